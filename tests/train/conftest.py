import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread_nondeterministic():
    """Each test on one intra-op thread (tiny models gain nothing from more, and on a busy machine waiting for
    them makes a step some 50× slower), and without a run's deterministic mode leaking into the next test."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
