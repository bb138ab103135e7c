"""How a temporary resource of an AWS drill is named and tagged, and how one is recognised as
drwatch's: both the name's prefix and the tag, never one alone (the reaper deletes only those)."""

from __future__ import annotations

import re
import secrets

PREFIX = "drwatch-drill-"
TAG_DRILL = "drwatch-drill"
TAG_TARGET = "drwatch-target"


def resource_name(target: str, limit: int = 40) -> tuple[str, str]:
    """(drill id, a resource name from the target and the drill): letters, digits and single
    hyphens, starting with a letter, within `limit` characters (ElastiCache's is 40)."""
    drill = secrets.token_hex(4)
    stem = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", target.lower())).strip("-") or "target"
    room = limit - len(PREFIX) - len(drill) - 1
    return drill, f"{PREFIX}{stem[:room].rstrip('-')}-{drill}"


def tags(drill: str, target: str) -> list[dict[str, str]]:
    return [{"Key": TAG_DRILL, "Value": drill}, {"Key": TAG_TARGET, "Value": target}]


def is_drills(name: str, tag_list: list[dict[str, str]]) -> bool:
    """Both marks of a drill's resource: the name's prefix and the drill tag."""
    return name.startswith(PREFIX) and any(t.get("Key") == TAG_DRILL for t in tag_list)
