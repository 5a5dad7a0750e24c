import uuid

from saassy.dispatch.wakeup import Wakeup


async def test_it_says_which_organizations_alone_woke_it() -> None:
    wakeup = Wakeup()
    first, second = uuid.uuid4(), uuid.uuid4()
    wakeup.set_for(first)
    wakeup.set_for(second)
    assert wakeup.is_set()
    assert wakeup.take() == {first, second}
    assert not wakeup.is_set()


async def test_anything_else_beside_them_says_anything() -> None:
    wakeup = Wakeup()
    wakeup.set_for(uuid.uuid4())
    wakeup.set()
    assert wakeup.take() is None
    wakeup.set_for(uuid.uuid4())  # what was taken is forgotten
    assert wakeup.take() is not None


async def test_nothing_at_all_is_a_poll_which_may_find_anything() -> None:
    wakeup = Wakeup()
    assert wakeup.take() is None
    wakeup.set()
    wakeup.take()
    assert wakeup.take() is None
