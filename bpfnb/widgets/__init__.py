"""Live views: ipywidgets that redraw a map or an event stream while the probe runs.

Each view refreshes on an asyncio task on the kernel's event loop, has a start/stop toggle, an
interval and a status line, and stops when its BpfObject closes. Without a browser,
``refresh()`` updates it once and ``.data`` holds what it shows.
"""

from bpfnb.widgets.base import LiveView
from bpfnb.widgets.eventlog import EventLog
from bpfnb.widgets.histogram import LiveHistogram
from bpfnb.widgets.rate import LiveRate
from bpfnb.widgets.show import show
from bpfnb.widgets.table import LiveTable

__all__ = ["EventLog", "LiveHistogram", "LiveRate", "LiveTable", "LiveView", "show"]
