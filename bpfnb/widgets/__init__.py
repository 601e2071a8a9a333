"""Live views: ipywidgets that redraw a map or an event stream while the probe runs.

Each view refreshes on an asyncio task on the kernel's event loop, has a start/stop toggle, an
interval and a status line, and stops when its BpfObject closes. Without a browser,
``refresh()`` updates it once and ``.data`` holds what it shows.
"""

from bpfnb.widgets.event_log import EventLog
from bpfnb.widgets.live_histogram import LiveHistogram
from bpfnb.widgets.live_rate import LiveRate
from bpfnb.widgets.live_table import LiveTable
from bpfnb.widgets.show import show
from bpfnb.widgets.view import LiveView

__all__ = ["EventLog", "LiveHistogram", "LiveRate", "LiveTable", "LiveView", "show"]
