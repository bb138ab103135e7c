"""What every config section is built from: strict models (unknown keys are errors, values
frozen) and the options every check takes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.durations import Duration


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckOptions(Strict):
    enabled: bool = True
    interval: Duration | None = None  # default: the section's interval
    timeout: Duration | None = None  # default: the section's timeout
