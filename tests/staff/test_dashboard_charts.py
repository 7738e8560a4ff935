"""The dashboard's bar charts: labels cut to the room they are drawn in, at either type size."""

from portal.staff.dashboard import fit_label, text_width


def test_labels_that_fit_are_kept_whole():
    assert fit_label("Forestry (afforestation)", 200, 13) == "Forestry (afforestation)"
    assert fit_label("林业（造林）", 192, 17) == "林业（造林）"


def test_long_labels_are_cut_to_their_room_with_an_ellipsis():
    name = "Chifeng Municipal Government Affairs Service Centre"
    for font in (13, 17):
        cut = fit_label(name, 272, font)
        assert cut.endswith("…") and name.startswith(cut[:-1])
        assert text_width(cut, font) <= 272 < text_width(name, font)
    # Chinese characters are a full em wide: fewer of them fit.
    assert fit_label("赤峰市机关事务服务中心" * 2, 192, 17) == "赤峰市机关事务服务中…"
