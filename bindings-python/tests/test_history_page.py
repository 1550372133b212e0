"""`Engine.history_page`: the history in pages with the cursor of the following page, on both
stores. The cursor is set only when a following page exists, so an exactly full last page has
`next is None`, and `next` is what `before` takes."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest

import fundcore
from conftest import ANA


def make_transactions(eng, client_id: str, count: int) -> list[fundcore.Transaction]:
    """`count` transactions (subscribe and cancel in turn), newest first as history gives them."""
    made = []
    for index in range(count):
        if index % 2 == 0:
            made.append(eng.subscribe(client_id, 3))
        else:
            made.append(eng.cancel(client_id, 3))
    return made[::-1]


def all_pages(eng, client_id: str, limit: int) -> list[fundcore.HistoryPage]:
    pages = [eng.history_page(client_id, limit=limit)]
    while pages[-1].next is not None:
        pages.append(eng.history_page(client_id, limit=limit, before=pages[-1].next))
        assert len(pages) < 100
    return pages


@pytest.mark.parametrize("count, limit, sizes", [(5, 2, [2, 2, 1]), (4, 2, [2, 2]), (3, 3, [3]), (1, 50, [1])])
def test_pages_cover_the_history_and_only_a_following_page_has_a_cursor(engine, ana, count, limit, sizes):
    newest_first = make_transactions(engine, ana.id, count)
    pages = all_pages(engine, ana.id, limit)
    assert [len(page) for page in pages] == sizes
    assert [tx for page in pages for tx in page.items] == newest_first == engine.history(ana.id)
    for page, following in itertools.pairwise(pages):
        assert page.next == page.items[-1].id  # the cursor is the page's oldest transaction
        assert following.items[0].created_at <= page.items[-1].created_at
    assert pages[-1].next is None  # also when the last page is exactly full (4 by 2, 3 by 3)


def test_pages_agree_with_history(engine, ana):
    make_transactions(engine, ana.id, 5)
    first = engine.history_page(ana.id, limit=2)
    assert first.items == engine.history(ana.id, limit=2)
    assert engine.history_page(ana.id, limit=2, before=first.next).items == engine.history(
        ana.id, limit=2, before=first.next
    )


def test_a_full_page_of_max_page_with_one_more(store):
    """`limit=MAX_PAGE` is a page size the engine serves; one transaction more is a second page."""
    with store.open() as eng:
        ana = eng.register_client(*ANA, "email")
        newest_first = make_transactions(eng, ana.id, fundcore.MAX_PAGE + 1)
        first = eng.history_page(ana.id, limit=fundcore.MAX_PAGE)
        assert first.items == newest_first[: fundcore.MAX_PAGE]
        assert first.next == newest_first[fundcore.MAX_PAGE - 1].id
        last = eng.history_page(ana.id, limit=fundcore.MAX_PAGE, before=first.next)
        assert (last.items, last.next) == ([newest_first[-1]], None)
        exactly_full = eng.history_page(ana.id, limit=fundcore.MAX_PAGE, before=newest_first[0].id)
        assert (len(exactly_full), exactly_full.next) == (fundcore.MAX_PAGE, None)


def test_empty_history(engine, ana):
    page = engine.history_page(ana.id)
    assert (page.items, page.next, len(page)) == ([], None, 0)
    assert page.to_dict() == {"items": [], "next": None}


def test_to_dict_is_the_rest_page(engine, ana):
    make_transactions(engine, ana.id, 3)
    page = engine.history_page(ana.id, limit=2)
    data = page.to_dict()
    assert list(data) == ["items", "next"]
    assert data == {"items": [tx.to_dict() for tx in page.items], "next": page.next}
    assert isinstance(data["next"], str) and uuid.UUID(data["next"])
    assert json.loads(json.dumps(data)) == data
    last = engine.history_page(ana.id, limit=2, before=data["next"]).to_dict()
    assert last["next"] is None and len(last["items"]) == 1


def test_page_is_immutable_and_readable(engine, ana):
    make_transactions(engine, ana.id, 2)
    page = engine.history_page(ana.id, limit=1)
    with pytest.raises(AttributeError):
        page.next = None
    assert repr(page) == f"HistoryPage(items=<1 transactions>, next='{page.next}')"
    assert isinstance(page, fundcore.HistoryPage)
    with pytest.raises(TypeError):
        fundcore.HistoryPage()


def test_bad_arguments(engine, ana):
    for limit in (0, -1, fundcore.MAX_PAGE + 1, 10**30):
        with pytest.raises(fundcore.ValidationError) as info:
            engine.history_page(ana.id, limit=limit)
        assert (info.value.code, info.value.field) == ("VALIDATION_ERROR", "limit")
    with pytest.raises(fundcore.ValidationError) as info:
        engine.history_page(ana.id, before="not-a-cursor")
    assert (info.value.code, info.value.field) == ("VALIDATION_ERROR", "before")
    for unknown in (str(uuid.uuid4()), "not-a-client"):
        with pytest.raises(fundcore.NotFoundError) as info:
            engine.history_page(unknown)
        assert info.value.code == "CLIENT_NOT_FOUND"
    with pytest.raises(TypeError):
        engine.history_page(ana.id, limit="5")
