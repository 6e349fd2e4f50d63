"""The live topic dashboard: stored posts offline, X's recent search online, polling for newer posts."""

from tests.test_pages import online


def harbour_posts(start_id: int, texts: list[str]) -> list[dict]:
    return [
        {"id": start_id + i, "text": text, "created_at": "2026-11-20T10:00:00.000Z", "lang": "en"}
        for i, text in enumerate(texts)
    ]


def test_offline_the_topic_is_searched_in_the_stored_posts(client, voices, add_account):
    page = client.get("/topic?q=route")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Offline" in text
    assert "Route 12 was 14 minutes late again" in text and "sourdough" not in text
    body = client.get("/api/topic?q=route").get_json()
    assert body["source"] == "stored" and body["model"] == {"backend": "vader", "version": None}
    assert len(body["posts"]) == 2 and sum(body["mix"].values()) == 2
    assert {p["username"] for p in body["posts"]} == {"commuter"}
    newest = body["newest_id"]
    assert client.get(f"/api/topic?q=route&since_id={newest}").get_json()["posts"] == []
    add_account("buses", ["Route 9 is brilliant today, on time!"], account_id=555)
    fresh = client.get(f"/api/topic?q=route&since_id={newest}").get_json()
    assert [p["text"] for p in fresh["posts"]] == ["Route 9 is brilliant today, on time!"]
    assert fresh["posts"][0]["label"] == "positive"


def test_online_the_topic_comes_from_x_recent_search(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(90, "harbourfan", "Harbour Fan", harbour_posts(1000, ["Love the #harbour at dawn", "Nothing here"]))
    fake_x.add_user(91, "grumpy", "Grumpy", harbour_posts(2000, ["The #harbour smells awful today"]))
    body = client.get("/api/topic?q=%23harbour").get_json()
    assert body["source"] == "x"
    assert [(p["username"], p["label"]) for p in body["posts"]] == [("grumpy", "negative"), ("harbourfan", "positive")]
    query = next(q for path, q in fake_x.requests if path.endswith("/search/recent"))
    assert query["query"] == "#harbour -is:retweet lang:en"
    fake_x.add_posts("harbourfan", harbour_posts(3000, ["A calm #harbour evening"]))
    fake_x.requests.clear()
    newer = client.get(f"/api/topic?q=%23harbour&since_id={body['newest_id']}").get_json()
    assert [p["text"] for p in newer["posts"]] == ["A calm #harbour evening"]
    assert fake_x.requests[0][1]["since_id"] == "2000"
    page = client.get("/topic?q=%23harbour").get_data(as_text=True)
    assert "Recent posts from X" in page and "The #harbour smells awful today" in page
    assert 'class="mix-bar bar-negative"' in page


def test_topic_errors_are_explained(client, app, fake_x):
    assert client.get("/topic").status_code == 200  # just the form
    response = client.get("/topic?q=" + "x" * 201)
    assert response.status_code == 400 and "at most 200 characters" in response.get_data(as_text=True)
    response = client.get("/api/topic")
    assert response.status_code == 400 and "Type a hashtag" in response.get_json()["message"]
    response = client.get("/api/topic?q=route&since_id=abc")
    assert response.status_code == 400 and "since_id" in response.get_json()["message"]
    online(app, fake_x)
    fake_x.fail_next(401)
    response = client.get("/api/topic?q=route")
    assert response.status_code == 502 and "bearer token" in response.get_json()["message"]
    fake_x.fail_next(401)
    page = client.get("/topic?q=route")
    assert page.status_code == 502 and "bearer token" in page.get_data(as_text=True)
