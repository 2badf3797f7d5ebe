"""Request building and `meta.next` handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ti_anomali.paging import (
    ForeignNextLink,
    RequestWindow,
    first_page_parameters,
    format_api_time,
    moves_forward,
    next_page_parameters,
    page_cursor,
)

NOW = datetime(2026, 12, 4, 21, 30, 15, 123456, tzinfo=UTC)
WINDOW = RequestWindow(
    page_size=1000,
    delay=timedelta(minutes=1),
    initial_interval=timedelta(hours=2160),
    query=None,
    remote_api=False,
)
BASE = "https://api.threatstream.example"


def test_first_run_asks_for_initial_window() -> None:
    parameters = first_page_parameters(WINDOW, None, NOW)

    assert parameters == {
        "order_by": "update_id",
        "modified_ts__lt": "2026-12-04T21:29:15Z",
        "limit": "1000",
        "modified_ts__gt": "2026-09-05T21:30:15Z",
    }


def test_later_run_continues_after_cursor() -> None:
    parameters = first_page_parameters(WINDOW, 2**60 + 1, NOW)

    assert parameters["update_id__gt"] == "1152921504606846977"
    assert "modified_ts__gt" not in parameters


def test_query_and_remote_api_added_when_set() -> None:
    window = RequestWindow(500, timedelta(minutes=1), timedelta(hours=1), "itype=mal_ip", True)

    parameters = first_page_parameters(window, 5, NOW)

    assert parameters["q"] == "itype=mal_ip"
    assert parameters["remote_api"] == "true"
    assert parameters["limit"] == "500"


def test_remote_api_false_never_sent() -> None:
    assert "remote_api" not in first_page_parameters(WINDOW, 5, NOW)


def test_api_time_is_utc_without_fraction() -> None:
    other_zone = NOW.astimezone(datetime.now().astimezone().tzinfo)

    assert format_api_time(other_zone) == "2026-12-04T21:30:15Z"


def test_next_link_keeps_query_drops_credentials() -> None:
    link = (
        "/api/v2/intelligence/?limit=3&username=alice&api_key=s3cret&update_id__gt=9&search_after=9&q=a%3Db"
    )

    parameters = next_page_parameters(link, BASE)

    assert parameters == {"limit": "3", "update_id__gt": "9", "search_after": "9", "q": "a=b"}


def test_absolute_next_link_on_same_origin_accepted() -> None:
    parameters = next_page_parameters(BASE + "/api/v2/intelligence/?update_id__gt=4", BASE)

    assert parameters == {"update_id__gt": "4"}


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/api/v2/intelligence/?update_id__gt=4",
        "http://api.threatstream.example/api/v2/intelligence/?update_id__gt=4",
        "https://api.threatstream.example:8443/api/v2/intelligence/?update_id__gt=4",
        "/api/v2/other/?update_id__gt=4",
    ],
)
def test_next_link_elsewhere_rejected(link: str) -> None:
    with pytest.raises(ForeignNextLink):
        next_page_parameters(link, BASE)


def test_page_cursor_is_max_update_id() -> None:
    assert page_cursor([5, 2**63 + 7, 9]) == 2**63 + 7
    assert page_cursor([]) is None


def test_page_must_pass_cursor_to_move_forward() -> None:
    assert moves_forward(10, None)
    assert moves_forward(11, 10)
    assert not moves_forward(10, 10)
    assert not moves_forward(None, 10)


@pytest.mark.parametrize(
    "link",
    ["http://127.0.0.1:notaport/api/v2/intelligence/", "http://127.0.0.1:99999/api/v2/intelligence/", "http://[::1/x"],
)
def test_next_link_with_invalid_url_rejected(link: str) -> None:
    with pytest.raises(ForeignNextLink, match="not a valid URL"):
        next_page_parameters(link, BASE)
