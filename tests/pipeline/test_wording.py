from pipeline.wording import counted


def test_counts_read_with_separators_and_the_right_plural():
    assert counted(1, "request") == "1 request"
    assert counted(0, "request") == "0 requests"
    assert counted(4372, "hot FastOR") == "4,372 hot FastORs"
    assert counted(1_250_000, "bin") == "1,250,000 bins"
    assert counted(2, "entry", "entries") == "2 entries"
