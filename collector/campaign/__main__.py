"""``python -m collector.campaign``: the GPU campaign (see :mod:`collector.campaign.gpu`)."""

import sys

from collector.campaign.gpu import main

sys.exit(main())
