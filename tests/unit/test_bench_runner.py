"""``make bench`` runs the PostgreSQL benchmarks where a server answers and says why it skipped them elsewhere."""

from __future__ import annotations

from bench.__main__ import BENCHMARKS, POSTGRES_BENCHMARKS, chosen


def test_without_a_server_the_postgres_benchmarks_are_skipped_in_one_line_naming_the_redacted_url() -> None:
    names, skipped = chosen("postgresql://closeloop:s3cret@127.0.0.1:1/none")
    assert names == list(BENCHMARKS)
    assert skipped is not None
    assert skipped.startswith("skipped pgstore, replicas: no PostgreSQL server answers at postgresql://closeloop:")
    assert "s3cret" not in skipped
    assert "\n" not in skipped


def test_with_a_server_every_benchmark_runs(postgres_url: str) -> None:
    names, skipped = chosen(postgres_url)
    assert skipped is None
    assert names == [*BENCHMARKS, *POSTGRES_BENCHMARKS]
