"""``GET /funds/{fund_id}``: one fund of the catalogue, for every authenticated caller (clients and
admins, as ``GET /funds``), read from the real engine; an id that names no fund is the engine's
own ``FUND_NOT_FOUND``."""

from __future__ import annotations

import pytest
from conftest import ADMIN, assert_envelope, bearer, make_engine, register

import fundcore


def test_a_client_and_an_admin_read_a_fund_as_the_catalogue_lists_it(api, engine):
    ana = register(api)
    catalogue = api.get("/funds", headers=ADMIN).json()
    assert len(catalogue) == len(engine.funds()) >= 2
    for caller in (ADMIN, bearer(ana["id"])):
        for listed in catalogue:
            r = api.get(f"/funds/{listed['id']}", headers=caller)
            assert r.status_code == 200, r.text
            assert r.json() == listed == engine.fund(listed["id"]).to_dict()


def test_a_fund_is_read_as_it_is_now(api):
    changed = api.patch("/funds/3", json={"minimum": "60000.50", "active": False, "name": "DEUDA_2"}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    r = api.get("/funds/3", headers=bearer(register(api)["id"]))
    assert r.json() == changed.json()
    assert r.json() == {"id": 3, "name": "DEUDA_2", "minimum": "60000.50", "category": "FIC", "active": False}
    created = api.post("/funds", json={"id": 7, "name": "FIC_7", "minimum": 1000, "category": "FIC"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert api.get("/funds/7", headers=ADMIN).json() == created.json()


@pytest.mark.parametrize("fund_id", [99, 0, -1, 2**40, 10**30])
def test_an_id_that_names_no_fund_is_the_engines_fund_not_found(api, engine, fund_id):
    with pytest.raises(fundcore.NotFoundError) as raised:
        engine.fund(fund_id)
    body = assert_envelope(api.get(f"/funds/{fund_id}", headers=ADMIN), 404, "FUND_NOT_FOUND")
    assert body["message"] == raised.value.message and body["errors"] is None


def test_an_english_engine_answers_in_english(app_factory):
    english = make_engine(locale="en")
    api = app_factory(eng=english, locale="en")
    with pytest.raises(fundcore.NotFoundError) as raised:
        english.fund(99)
    body = assert_envelope(api.get("/funds/99", headers=ADMIN), 404, "FUND_NOT_FOUND")
    assert body["message"] == raised.value.message and "99" in body["message"]
    spanish = assert_envelope(app_factory().get("/funds/99", headers=ADMIN), 404, "FUND_NOT_FOUND")
    assert body["message"] != spanish["message"]
