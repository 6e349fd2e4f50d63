"""One field for every network: the form of a typed or pasted handle says which network it is."""

import pytest

from twitapp.sources import handles


@pytest.mark.parametrize(
    ("typed", "platform", "name"),
    [
        ("ana", "x", "ana"),
        ("@Ana_1", "x", "Ana_1"),
        ("  @ana  ", "x", "ana"),
        ("ana.bsky.social", "bluesky", "ana.bsky.social"),
        ("@Ana.Bsky.Social", "bluesky", "ana.bsky.social"),  # domains have no case
        ("@example.com", "bluesky", "example.com"),
        ("did:plc:abcdefghijklmnopqrstuvwx", "bluesky", "did:plc:abcdefghijklmnopqrstuvwx"),
        ("@ana@mastodon.social", "mastodon", "ana@mastodon.social"),
        ("Ana@Mastodon.Social", "mastodon", "Ana@mastodon.social"),  # the user part keeps its case
        ("https://bsky.app/profile/ana.bsky.social", "bluesky", "ana.bsky.social"),
        ("bsky.app/profile/@ana.bsky.social", "bluesky", "ana.bsky.social"),
        ("https://mastodon.social/@ana", "mastodon", "ana@mastodon.social"),
        ("https://mastodon.social/@ana@other.example", "mastodon", "ana@other.example"),
        ("https://x.com/ana", "x", "ana"),
        ("twitter.com/@ana", "x", "ana"),
    ],
)
def test_a_handle_is_read_as_the_network_its_form_says(typed, platform, name):
    handle = handles.parse(typed)
    assert (handle.platform, handle.name) == (platform, name)
    assert str(handle) == f"@{name}"
    assert handle.network == {"x": "X", "bluesky": "Bluesky", "mastodon": "Mastodon"}[platform]


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "Type the handle of the account."),
        ("@ana@", "is not a handle this app can read"),
        ("a b", "is not a handle this app can read"),
        ("ana..bsky.social", "is not a handle this app can read"),
        ("1.2.3.4", "is not a handle this app can read"),
        ("https://example.com/about", "is not a handle this app can read"),
        ("averyveryverylongname_x", "too long for an X username (at most 15 characters)"),
        ("x" * 500, "too long for a handle"),
    ],
)
def test_a_handle_of_no_network_is_refused_with_the_three_forms(typed, why):
    with pytest.raises(handles.HandleError) as refused:
        handles.parse(typed)
    assert why in str(refused.value)
    assert "Type an X username (ana or @ana), a Bluesky handle (ana.bsky.social" in str(refused.value)
    assert "a Mastodon address (@ana@mastodon.social)" in str(refused.value)


def test_stored_handles_of_every_network_are_accepted_and_others_are_not():
    for stored in ("harborbaker", "a" * 50, "ana.bsky.social", "ana@mastodon.social"):
        assert handles.check_stored_form(stored) == stored
    for bad in ("a" * 51, "ana bsky", "ana@", "h\u0430rborbaker", "x" * 301):
        with pytest.raises(handles.HandleError):
            handles.check_stored_form(bad)
