"""/metrics built before the request: a scrape costs a copy, whatever the checks do."""

from __future__ import annotations

import gzip
import threading

from exporter.web.page import PageCache
from sandbox.pgcluster import wait_until


def test_a_scrape_is_served_the_page_built_before_it_and_a_change_is_built_once() -> None:
    builds = [0]
    complete = [False]

    def build() -> bytes:
        builds[0] += 1
        return f"page {builds[0]}\n".encode() * 1000

    page = PageCache(build, lambda: complete[0], refresh=60, min_gap=0.2)
    page.start()
    try:
        first = page.body()
        assert [page.body() for _ in range(100)] == [first] * 100 and builds[0] == 1
        zipped = page.body(gzipped=True)
        assert gzip.decompress(zipped) == first
        assert page.body(gzipped=True) is zipped  # compressed once per page
        assert not page.complete()  # the page served lacks some check's first result
        complete[0] = True
        for _ in range(50):  # a burst of results: one build, not fifty
            page.changed()
        wait_until(lambda: page.body() != first, 5, what="the page rebuilt")
        assert page.complete()
        assert builds[0] == 2
        assert gzip.decompress(page.body(gzipped=True)) == page.body()
    finally:
        page.stop()


def test_a_build_begun_earlier_never_replaces_a_later_one() -> None:
    """The builder's page, begun before a reload, finishes after the reload's own build."""
    slow_started, slow_release = threading.Event(), threading.Event()
    versions = iter(["first", "old", "new"])

    def build() -> bytes:
        version = next(versions)
        if version == "old":
            slow_started.set()
            slow_release.wait(10)
        return version.encode()

    page = PageCache(build, refresh=60)
    page.start()  # "first"
    builder = threading.Thread(target=page.rebuild)
    builder.start()
    assert slow_started.wait(10)
    page.rebuild()  # "new", as a reload does
    slow_release.set()
    builder.join(10)
    try:
        assert page.body() == b"new"
    finally:
        page.stop()
