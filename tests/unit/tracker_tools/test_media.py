import numpy as np

from tracker_tools.media import paint_over


def test_paint_over_fills_each_grown_box_with_the_median_colour_in_place():
    frame = np.full((100, 100, 3), 7, np.uint8)
    frame[40:60, 40:60] = 200  # the person
    paint_over(frame, np.array([[40.0, 40.0, 60.0, 60.0]]))
    assert (frame[36:64, 36:64] == 7).all()  # grown by a fifth (4 px) on every side
    untouched = np.full((100, 100, 3), 7, np.uint8)
    paint_over(untouched, np.zeros((0, 4)))
    assert (untouched == 7).all()


def test_paint_over_clips_a_grown_box_at_the_border():
    frame = np.zeros((50, 50, 3), np.uint8)
    frame[:10, :10] = 255
    paint_over(frame, np.array([[0.0, 0.0, 10.0, 10.0]]))
    assert (frame[:12, :12] == 0).all() and (frame[12:, 12:] == 0).all()
