"""The GPU transfer model: training energy on any catalogued GPU, from measurements of others.

``model`` holds the equations, ``fit`` and ``evaluate`` fit and score them, ``train`` runs both,
``artifact`` publishes and loads the fitted model, ``answer`` and ``serve`` turn it into served
estimates, ``cli`` is ``joulecast fit-transfer``. Nothing is imported here, so that the command
line's help stays free of numpy.
"""
