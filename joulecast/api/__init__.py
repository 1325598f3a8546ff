"""The Python API behind ``joulecast.Estimator`` (its public names live on ``joulecast``).

``estimate`` (the :class:`Estimator`), ``prediction`` (the records it returns), ``graphs`` (a
model as the API takes it -> a weightless ONNX graph). Like ``joulecast.cli``, this is a
composition root: it stands on the estimator and the service (imported when first used), which
the rest of the ``joulecast`` package never imports.
"""
