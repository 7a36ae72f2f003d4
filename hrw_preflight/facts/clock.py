"""The one clock computation both probes use: the host's UTC time against the controller's.

The host reads its clock somewhere inside one remote command; the controller reads its own
just before and just after that command. The controller's time of the reading is the
midpoint, give or take half the command's duration, plus a slack for the resolution of the
host's reading.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrw_preflight.facts.framing import Unreadable
from hrw_preflight.facts.schema import ClockData

# Seconds added to half the command's duration: the host's reading has a resolution of a
# second (Linux ``date +%s``) or a millisecond (Windows), and the controller's time.time()
# calls bracket more than the read itself.
CLOCK_SLACK_S = 1.0


@dataclass(frozen=True)
class CommandTiming:
    """The controller's ``time.time()`` just before and just after the command."""

    started: float
    ended: float

    @property
    def midpoint(self) -> float:
        """Return the controller's best estimate of when the host read its clock.

        The host reads its clock somewhere inside the command, so the middle of the
        command is at most half its duration away from that moment.
        """
        return (self.started + self.ended) / 2

    @property
    def uncertainty_s(self) -> float:
        """Return how far the host's reading may lie from :attr:`midpoint`, in seconds:
        half the command's duration plus :data:`CLOCK_SLACK_S`."""
        return max(0.0, self.ended - self.started) / 2 + CLOCK_SLACK_S


def clock_data(host_epoch: float, timing: CommandTiming | None) -> ClockData:
    """Return the ``clock`` section's data for a host reading of ``host_epoch`` (seconds).

    Raises :class:`Unreadable` when the controller's time around the command is unknown:
    then the reading cannot be compared with anything.
    """
    if timing is None:
        raise Unreadable("the controller's time around the command is unknown")
    return {
        "host_epoch": host_epoch,
        "controller_epoch": round(timing.midpoint, 3),
        "uncertainty_s": round(timing.uncertainty_s, 3),
    }
