"""ipywidgets front-ends for the lab: a step-through session, a telnet-like console, an MX
explorer, a relay-chain explorer and a port explorer.

All five are thin. StepThrough and Console open a hand-typed session with
:meth:`Lab.session`, send lines with :meth:`Session.send`, and draw the entries
the lab recorded (the notes come from the lab's catalogue, :mod:`smtplab.codes`);
they never speak SMTP themselves. MXExplorer calls :meth:`Lab.dig` and
:meth:`Lab.mx`; ChainExplorer sends one message through a relay chain and draws
its trace with :mod:`smtplab.plots` (five messages per length, the median shown and
fitted); PortExplorer calls :meth:`Lab.send` with a network, a port and a TLS mode,
and explains the outcome. None of them raises into the notebook because of
something a student did: a refused command, a closed connection, a stopped lab, a
name that is not a domain or a host that does not exist all become a message
inside the widget.

A widget outlives its lab: when a newer ``Lab()`` replaces the one it was made with
(a re-run cell, Run All again), its next click uses the notebook's current lab and
says so (:class:`~smtplab.widgets.common.LabWidget`). That is why the notebooks no
longer end with ``lab.stop()``: the kernel stops the last lab when it shuts down.
Saved without widget state (on GitHub, or opened before Run All) each widget shows
one line of text saying what it is and that it needs a live notebook.

    from smtplab.widgets import StepThrough, Console, MXExplorer, ChainExplorer, PortExplorer
    StepThrough(lab)           # click "Send next command" through a whole submission
    Console(lab, port=25)      # type SMTP commands yourself, like telnet
    MXExplorer(lab)            # ask the lab DNS, and see what a sending server does with the answer
    ChainExplorer()            # send through 0..6 relays (in a lab of its own) and plot the hop times;
                               # its Compare button runs 0, 2, 4 and 6 relays and fits ms per relay
    PortExplorer(lab)          # from home, a hotel or a campus, to port 25, 465, 587 or 2525: what happens, and why
"""

from .common import render_entries
from .explorers import ChainExplorer, MXExplorer, PortExplorer, mx_verdict
from .sessions import Console, StepThrough

__all__ = ["StepThrough", "Console", "MXExplorer", "ChainExplorer", "PortExplorer", "render_entries", "mx_verdict"]
