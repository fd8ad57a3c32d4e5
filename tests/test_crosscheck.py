"""The cross-check reproduces every trace the book prints, names included, and catches changes."""
import pytest
from mxnet.gluon import nn

from gluon_modern_cnn import book, cli

from gluon_modern_cnn.tools import crosscheck


@pytest.mark.parametrize("key", list(crosscheck.REPLAYS))
def test_section_matches_the_book_line_for_line(key):
    (check,) = crosscheck.crosscheck([key])
    assert check.error is None
    expected = [line for output in book.section(key).outputs for line in output.lines]
    assert [c.book for c in check.lines] == expected
    assert check.ok, crosscheck.format_report([check])
    if all(o.names_match for o in book.section(key).outputs):
        assert [book.normalize_whitespace(c.package) for c in check.lines] == \
               [book.normalize_whitespace(line) for line in expected]


def test_older_edition_resnet_is_compared_by_shape_only():
    (check,) = crosscheck.crosscheck(["5.12"])
    assert check.ok
    assert {c.names_match for c in check.lines[2:]} == {False}
    assert check.lines[2].package.startswith("conv5 output shape:")  # the book printed conv52


def _altered_alexnet(**kwargs):
    net = nn.Sequential()
    net.add(nn.Conv2D(95, kernel_size=11, strides=4, activation='relu'), nn.Dense(10))
    return net


def test_altered_model_makes_the_command_exit_non_zero(monkeypatch, capsys):
    assert cli.main(["crosscheck", "--section", "7.1"]) == 0
    assert "7.1 Deep Convolutional Neural Networks (AlexNet): MATCH" in capsys.readouterr().out
    monkeypatch.setattr(crosscheck, "alexnet", _altered_alexnet)
    assert cli.main(["crosscheck", "--section", "7.1", "--section", "7.6"]) == 1
    out = capsys.readouterr().out
    assert "7.1 Deep Convolutional Neural Networks (AlexNet): MISMATCH" in out
    assert "!! conv0 output shape: (1, 96, 54, 54)" in out
    assert "7.6 Residual Networks (ResNet): MATCH" in out
    assert "1 of 2 sections match the book; mismatches in 7.1" in out


def test_model_that_raises_is_reported_as_a_mismatch(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(crosscheck, "nin", broken)
    (check,) = crosscheck.crosscheck(["7.3"])
    assert not check.ok and check.error == "RuntimeError: boom"


def test_unknown_section_lists_the_valid_ones():
    with pytest.raises(ValueError, match="section 7.5 has no deterministic output.*7.1, 7.2"):
        crosscheck.crosscheck(["7.5"])


def test_an_edition_selects_its_sections():
    assert [c.key for c in crosscheck.crosscheck(edition="gluonbook")] == ["5.12", "5.13"]
    with pytest.raises(ValueError, match="the 1.0 edition's source keeps no printed shapes"):
        crosscheck.crosscheck(edition="1.0")
    with pytest.raises(ValueError, match="section 7.6 is of the 0.17 edition, not gluonbook"):
        crosscheck.crosscheck(["7.6"], edition="gluonbook")
    with pytest.raises(ValueError, match="unknown edition 'nd'"):
        crosscheck.crosscheck(edition="nd")
