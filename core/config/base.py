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


def single_userinfo(url: str) -> None:
    """Refuses a URL whose authority holds more than one '@': the server reads what follows the
    first as the host, so an unescaped '@' in a password would put its tail in every error."""
    if "://" not in url:
        return
    authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        # Never echo the value: it holds a password.
        raise ValueError(
            "more than one '@' before the host: percent-encode '@' in the user name or "
            "password as %40"
        )
