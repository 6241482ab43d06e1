import pytest

from vigil.school.streamurl import InvalidStreamURL, parse_stream_url, redact, with_credentials


def test_credentials_are_split_out_of_the_url() -> None:
    parsed = parse_stream_url("rtsp://admin:s3cr%40t@10.0.0.5:554/Streaming/Channels/101")
    assert parsed.url == "rtsp://10.0.0.5:554/Streaming/Channels/101"
    assert parsed.username == "admin"
    assert parsed.password == "s3cr@t"


def test_query_is_kept() -> None:
    parsed = parse_stream_url("rtsp://cam.local/cam/realmonitor?channel=1&subtype=0")
    assert parsed.url == "rtsp://cam.local/cam/realmonitor?channel=1&subtype=0"
    assert not parsed.has_credentials


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("http://10.0.0.5/stream", "scheme"),
        ("10.0.0.5:554/stream", "scheme"),
        ("rtsp:///Streaming/Channels/101", "no host"),
        ("rtsp://10.0.0.5:99999/x", "port"),
        ("rtsp://10.0.0.5:abc/x", "port"),
        ("rtsp://10.0.0.5/ stream", "spaces"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(InvalidStreamURL, match=reason):
        parse_stream_url(url)


def test_redact_and_with_credentials_round_trip() -> None:
    full = with_credentials("rtsp://10.0.0.5:554/x", "admin", "p@ss word")
    assert "p%40ss%20word" in full
    back = parse_stream_url(full)
    assert (back.username, back.password) == ("admin", "p@ss word")
    assert redact(full) == "rtsp://admin:***@10.0.0.5:554/x"
    assert "p%40ss" not in redact(full)
