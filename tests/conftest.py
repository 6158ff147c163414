import pytest


@pytest.fixture(autouse=True)
def recviz_home(tmp_path, monkeypatch):
    """Every test gets its own data directory: nothing touches a real user's ~/.recviz."""
    home = tmp_path / "recviz-home"
    monkeypatch.setenv("RECVIZ_HOME", str(home))
    return home


@pytest.fixture
def one_torch_thread():
    """Tiny tensors train as fast on one torch thread, and one thread is immune to a busy 2-core
    machine; the setting is process-wide, so it is restored after the test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_model():
    """The test-only model (`tests/toy_model.py`) registered for the tests of one module, as a
    plug-in registers itself, and taken out again after them."""
    from recviz.models import registry
    from tests.toy_model import TOY

    registry.register(TOY)
    yield TOY
    registry.MODELS.pop(TOY.name, None)
