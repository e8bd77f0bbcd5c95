"""The persistent compilation cache of flow runs: on unless one is set."""

import jax
import pytest

from jaxact.flow import cache


@pytest.fixture(name="unset")
def unset_fixture(monkeypatch):
  """No cache folder in JAX's config or the environment; restored after."""
  old = jax.config.jax_compilation_cache_dir
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  jax.config.update("jax_compilation_cache_dir", None)
  yield monkeypatch
  jax.config.update("jax_compilation_cache_dir", old)


def test_sets_the_folder_when_none_is_set(unset, tmp_path):
  assert cache.enable_compilation_cache(str(tmp_path / "mine")) == str(tmp_path / "mine")
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")


def test_an_already_set_cache_wins(unset, tmp_path):
  jax.config.update("jax_compilation_cache_dir", str(tmp_path / "config"))
  assert cache.enable_compilation_cache(str(tmp_path / "mine")) == str(tmp_path / "config")
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "config")
  # Set in the environment after JAX's import: still the user's choice.
  jax.config.update("jax_compilation_cache_dir", None)
  unset.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "env"))
  assert cache.enable_compilation_cache(str(tmp_path / "mine")) == str(tmp_path / "env")
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "env")


def test_empty_path_sets_nothing(unset):
  assert cache.enable_compilation_cache("") is None
  assert cache.enable_compilation_cache(None) is None
  assert jax.config.jax_compilation_cache_dir is None
