import pytest

from vo_al.core.base.errors import ParameterError
from vo_al.core.session.labels import parse_label, read_label_csv, spectrum_key
from vo_al.core.session.settings import ProjectSettings, update_settings


def test_defaults_are_the_papers_numbers():
    s = ProjectSettings.default()
    m, p = s.method, s.preprocess
    assert (m.batch_size, m.precision_sample, m.precision_threshold, m.threshold_hits) == (100, 30, 0.8, 3)
    assert (m.patience, m.min_delta, m.long_patience, m.long_min_delta) == (10, 1e-4, 100, 1e-5)
    assert (m.strategy, m.train_batch) == ("entropy", 64)
    assert (p.window_min, p.window_max, p.n_points, p.ccd700_sigma_px) == (6519, 6732, 140, 7)


def test_round_trip_and_bad_values(tmp_path):
    s = ProjectSettings.default()
    update_settings(s.method, batch_size="50", warm_start="true")
    s.save(tmp_path / "settings.json")
    again = ProjectSettings.load(tmp_path / "settings.json")
    assert again.method.batch_size == 50 and again.method.warm_start is True
    with pytest.raises(ParameterError, match="batch_size='many'"):
        update_settings(s.method, batch_size="many")
    s.method.precision_threshold = 1.5
    with pytest.raises(ParameterError, match="precision_threshold=1.5"):
        s.validate()
    (tmp_path / "bad.json").write_text('{"method": {"batchsize": 3}}')
    with pytest.raises(ParameterError, match="batchsize"):
        ProjectSettings.load(tmp_path / "bad.json")


def test_labels_by_number_or_name():
    assert [parse_label(v) for v in ("0", "single", "Double Peak", 2, "absorption")] == [0, 1, 2, 2, 0]
    with pytest.raises(ParameterError, match="label='maybe'"):
        parse_label("maybe")


def test_ondrejov_style_ids_and_unknown_class(tmp_path, real_data):
    rows = read_label_csv(real_data / "ondrejov" / "labels.csv", scheme="ondrejov")
    counts = [sum(1 for _, v in rows if v == c) for c in (0, 1, 2)]
    assert counts == [6102, 5301, 1533]          # 12 936, the paper's numbers; 'unknown' skipped
    with pytest.raises(ParameterError, match="label='3'.*scheme 'vo-al'"):
        read_label_csv(real_data / "ondrejov" / "labels.csv")
    assert spectrum_key("ivo://asu.cas.cz/stel/ccd700/oe270005") == spectrum_key("oe270005.fits.gz")
