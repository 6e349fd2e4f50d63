"""Author attribution through the web form, the JSON API and the CLI, with its corner cases."""

import re

import pytest

from tests.support.data import VOICES
from tests.support.html import form_fields


def test_api_ranks_every_chosen_account_with_probabilities(client, voices):
    response = client.post(
        "/api/predict", json={"usernames": voices, "text": "warm sourdough loaves and croissants at dawn"}
    )
    assert response.status_code == 200
    body = response.get_json()
    ranking = body["ranking"]
    assert ranking[0]["username"] == "baker"
    assert {r["username"] for r in ranking} == set(voices)
    probabilities = [r["probability"] for r in ranking]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
    assert body["chance"] == pytest.approx(1 / 3, abs=1e-3)
    assert all(r["posts"] == len(VOICES[r["username"]]) for r in ranking)


@pytest.mark.parametrize(
    ("usernames", "text", "status", "message"),
    [
        (["baker"], "bread", 400, "at least two different accounts"),
        (["baker", "BAKER"], "bread", 400, "chosen twice"),
        (["baker", "commuter"], "   ", 400, "Type the text"),
        (["baker", "commuter"], "x" * 281, 400, "at most 280 characters; this one has 281"),
        (["baker", "nobody_here"], "bread", 404, "No stored account is called @nobody_here"),
    ],
)
def test_api_corner_cases_get_clear_json_errors(client, voices, usernames, text, status, message):
    response = client.post("/api/predict", json={"usernames": usernames, "text": text})
    assert response.status_code == status
    assert message in response.get_json()["message"]


def test_api_rejects_malformed_bodies(client, voices):
    for body in ([], {"usernames": "baker", "text": "x"}, {"usernames": ["baker", "coder"], "text": 5}):
        response = client.post("/api/predict", json=body)
        assert response.status_code == 400, body
        assert response.is_json
    response = client.post("/api/predict", data="not json", content_type="text/plain")
    assert response.status_code == 415 and response.is_json  # not sent as JSON at all
    response = client.post("/api/predict", data="not json", content_type="application/json")
    assert response.status_code == 400 and response.is_json


def test_an_account_with_no_posts_is_explained(client, voices, add_account):
    add_account("ghost", [])
    response = client.post("/api/predict", json={"usernames": ["baker", "ghost"], "text": "bread"})
    assert response.status_code == 400
    assert "@ghost has no stored posts yet" in response.get_json()["message"]


def test_compare_form_shows_the_ranking_and_chance(client, voices):
    response = client.post(
        "/compare",
        data={"usernames": ["commuter", "coder", "baker"], "text": "Route 9 bus late again, 20 minutes #transit"},
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    ranking = page[page.index('id="ranking"') : page.index("</ol>", page.index('id="ranking"'))]
    first = ranking.index("@commuter")
    assert first < ranking.index("@coder") and first < ranking.index("@baker")
    assert "Chance level for 3 accounts: 33.3%" in page


def test_compare_form_errors_keep_what_was_typed(client, voices):
    response = client.post("/compare", data={"usernames": ["baker"], "text": "my draft post"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Pick at least two different accounts to compare." in page
    assert "my draft post" in page


def test_the_result_keeps_the_accounts_and_the_text_for_the_next_step(client, voices):
    response = client.post("/compare", data={"usernames": ["baker", "coder"], "text": "rye loaves at dawn"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    form = client.post("/compare/edit", data=form_fields(page, "edit")).get_data(as_text=True)  # as it was sent
    assert "rye loaves at dawn</textarea>" in form
    assert re.search(r'value="baker"\s+checked', form) and re.search(r'value="coder"\s+checked', form)
    assert not re.search(r'value="commuter"\s+checked', form)
    # In place: another text for the same accounts, without going back.
    assert "<h2>Try another text with these accounts</h2>" in page
    assert sorted(form_fields(page, "again-form")["usernames"]) == ["baker", "coder"]
    again = client.post("/compare", data={"usernames": ["baker", "coder"], "text": "merged the refactor"})
    assert again.status_code == 200 and form_fields(again.get_data(as_text=True), "edit")["text"] == [
        "merged the refactor"
    ]
    # A post sent from elsewhere ("Compare this post") ticks its own account and those last compared.
    sent = client.get("/?text=Route+12+late&usernames=commuter&with_last=1").get_data(as_text=True)
    for name in ("baker", "coder", "commuter"):
        assert re.search(rf'value="{name}"\s+checked', sent), name


def test_compare_is_not_capped_at_four_accounts(client, add_account):
    for i in range(6):
        add_account(f"acct{i}", [f"post number {j} from account {i} about topic {i}" for j in range(5)])
    response = client.post("/api/predict", json={"usernames": [f"acct{i}" for i in range(6)], "text": "topic 3"})
    assert response.status_code == 200
    assert len(response.get_json()["ranking"]) == 6


def test_cli_predict_prints_the_ranking(runner, voices):
    result = runner.invoke(args=["predict", "baker", "coder", "--text", "merged the refactor, tests green"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("@coder")
    assert "chance level: 50.0%" in result.output
    # how far to trust it and why, as the result page says them
    assert re.search(r"How far to trust it: for these 2 accounts .* \d+% of their \d+ newest posts", result.output)
    held_out = r"newest posts, held out of training \(at least \d+% at 95% confidence; chance 50%\)"
    assert re.search(held_out, result.output)
    why = lines.index("Why: what points to each account, against the others:")
    assert [line.split(":")[0] for line in lines[why + 1 : why + 3]] == ["  toward @coder", "  toward @baker"]
    toward_coder = lines[why + 1]
    grams = re.findall(r"'([^']+)'", toward_coder)
    assert grams and all(g in "merged the refactor, tests green" for g in grams), toward_coder
    assert "Warning: @baker has only" in result.output  # the voices have a handful of posts each
    result = runner.invoke(args=["predict", "baker", "--text", "x"])
    assert result.exit_code != 0 and "at least two" in result.output


def test_probabilities_read_without_false_certainty():
    from twitapp.web.filters import format_percent

    assert [format_percent(p) for p in (0.99999, 0.9995, 0.9994, 0.5, 0.0006, 0.0004, 0.0)] == [
        ">99.9%",
        ">99.9%",
        "99.9%",
        "50.0%",
        "0.1%",
        "<0.1%",
        "<0.1%",
    ]
