def test_guest_tokens_name_one_guest_of_one_visit_and_expire(settings) -> None:
    guest_id, visit_id = uuid.uuid4(), uuid.uuid4()
    soon = datetime.now(UTC) + timedelta(minutes=5)
    link = guest_link_token(settings, guest_id, visit_id, soon)
    claims = read_guest_link(settings, link)
    assert claims is not None and (claims.guest_id, claims.visit_id) == (guest_id, visit_id)
    # A link is not a session, a session is not a link, and neither outlives its expiry.
    assert read_guest_session(settings, link) is None
    session_token = issue_guest_session(settings, guest_id, visit_id, soon)
    assert read_guest_link(settings, session_token) is None
    assert read_guest_session(settings, session_token) == claims
    expired = guest_link_token(
        settings, guest_id, visit_id, datetime.now(UTC) - timedelta(seconds=1)
    )
    assert read_guest_link(settings, expired) is None
    assert read_guest_link(settings, link[:-2] + "xx") is None
