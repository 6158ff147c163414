import pytest


@pytest.fixture(autouse=True)
def recviz_home(tmp_path, monkeypatch):
    """Every test gets its own data directory: nothing touches a real user's ~/.recviz."""
    home = tmp_path / "recviz-home"
    monkeypatch.setenv("RECVIZ_HOME", str(home))
    return home
