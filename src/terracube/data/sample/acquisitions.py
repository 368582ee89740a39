"""When Sentinel-2A and 2B passed over tile 32ULB in summer 2021, as the archive simulates it.

Relative orbit 008 passes on 2021-07-21 (Sentinel-2A, the tutorial's "after" scene) and every
5 days before and after, the two satellites alternating; relative orbit 108 passes two days after
each orbit-008 date (mod 5). That gives the real 2-3 day revisit of the tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

START = date(2021, 6, 1)
END = date(2021, 8, 31)
ANCHOR = date(2021, 7, 21)  # Sentinel-2A, relative orbit 008
FLOOD = date(2021, 7, 15)
TUTORIAL_DAYS = (date(2021, 6, 13), date(2021, 7, 21))


@dataclass(frozen=True)
class Acquisition:
    day: date
    platform: str  # "sentinel-2a" / "sentinel-2b"
    relative_orbit: int
    cloudiness: float  # share of the area under cloud, 0..1
    seed: int

    @property
    def datetime(self) -> datetime:
        minute = 30 if self.relative_orbit == 8 else 40
        return datetime(self.day.year, self.day.month, self.day.day, 10, minute, 31, tzinfo=timezone.utc)

    @property
    def product_id(self) -> str:
        stamp = self.datetime.strftime("%Y%m%dT%H%M%S")
        unit = "S2A" if self.platform.endswith("a") else "S2B"
        return f"{unit}_MSIL2A_{stamp}_N0301_R{self.relative_orbit:03d}_T32ULB_{self.day.strftime('%Y%m%d')}T134112"


def _platform(day: date, anchor: date, anchor_platform: str) -> str:
    steps = (day - anchor).days // 5
    same = steps % 2 == 0
    return anchor_platform if same else ("sentinel-2b" if anchor_platform == "sentinel-2a" else "sentinel-2a")


def acquisitions(seed: int = 2021) -> list[Acquisition]:
    rng = np.random.default_rng(seed)
    found = []
    day = START
    while day <= END:
        offset = (day - ANCHOR).days % 5
        orbit = 8 if offset == 0 else 108 if offset == 2 else None
        if orbit is not None:
            # Orbit 108 on 2021-07-18 is Sentinel-2A (7 days after its orbit-008 pass on 07-11).
            anchor, anchor_platform = (ANCHOR, "sentinel-2a") if orbit == 8 else (date(2021, 7, 18), "sentinel-2a")
            draw = rng.random()
            cloudiness = 0.0 if draw < 0.45 else float(rng.uniform(0.03, 0.15)) if draw < 0.65 else float(rng.uniform(0.15, 0.85))
            if day in TUTORIAL_DAYS:
                cloudiness = 0.0
            found.append(Acquisition(day, _platform(day, anchor, anchor_platform), orbit, cloudiness, int(rng.integers(1 << 31))))
        day += timedelta(days=1)
    return found
