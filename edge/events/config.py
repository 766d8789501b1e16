"""Event settings (YAML ``events:``): what an event carries and which decisions become events."""

from __future__ import annotations

from pydantic import Field

from edge.settings import Settings


class EventsConfig(Settings):
    crop: bool = Field(True, description="attach the best plate crop (JPEG, base64)")
    crop_max_width: int = Field(320, ge=16, le=4096, description="crops wider are scaled down")
    crop_quality: int = Field(85, ge=1, le=100, description="JPEG quality of the crop")
    provisional: bool = Field(True, description="publish provisional events, not only finals")
    # A plate tied to no vehicle that stays put is a sign, painted text or a poster (an EXIT
    # sign read as "EXI7"), not a passing car. Parked cars are not affected: their plates are
    # tied to a vehicle track.
    static_plate_s: float | None = Field(
        2.0,
        gt=0,
        description="a plate tied to no vehicle that has not moved for this long (seconds) is a"
        " sign or painted text: no event (null: off)",
    )
    static_max_move: float = Field(
        0.01, ge=0, le=1, description="'not moved': centre moved < this x frame diagonal"
    )
