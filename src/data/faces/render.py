"""Procedural faces: one face's parameters (:class:`FaceSpec`, drawn by :func:`sample_face`) and its picture
(:func:`render`).

A face is a list of filled polygons and strokes in canonical coordinates (the unit square, y down), each tagged
with the attribute it draws (:func:`parts`). :func:`render` maps them through the face's pose (head: scale, tilt,
shift; shoulders: scale, shift), draws them with PIL at 4× the output size and box-filters down (a 4×4
supersample: antialiased, and a part changes only the output pixels it touches), then lights and grains the
result. Everything is ours: no asset, no font, only numpy and PIL's ImageDraw.

What makes each attribute plain at 64 px (and still visible at 32):
gender (coloured lips, blush, lashes, thin arched brows vs plain lips and thick straight brows), hair colour (five
distinct hues, on the cap, the side tufts above the ears, the brows and the beard), hair length (bald scalp with side
tufts / a cap and fringe / hair falling beside the face below the chin), eyeglasses (two thick dark rims, bridge and
temples), smiling (an open mouth with white teeth vs a closed flat one), beard (jaw, chin and moustache in the hair
colour), hat (a saturated cool-coloured crown, band and brim, sitting above the hairline), skin tone (three tones
far apart next to a zero-mean lighting gradient of at most ±8%), face shape (width/height 0.95, 0.8, 0.65 at a
fixed area, so scale does not hide it).
"""
from __future__ import annotations

import colorsys
import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from src.data.faces.attributes import BY_NAME, NAMES, frequencies, sample_attributes, with_value

#: Drawing resolution relative to the output: a 4×4 box supersample per output pixel.
SUPERSAMPLE = 4

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]

#: Width/height of the face ellipse per ``face_shape`` value (its area stays that of a circle of FACE_SIZE).
FACE_RATIO = {"round": 0.95, "oval": 0.8, "long": 0.65}
FACE_SIZE = 0.21
#: Centre of the face ellipse, and the point the head tilts and scales about (the neck), before the pose.
FACE_CENTRE = (0.5, 0.44)
PIVOT = (0.5, 0.7)

SKIN: dict[str, RGB] = {"light": (238, 204, 178), "medium": (198, 140, 94), "dark": (104, 70, 58)}
HAIR: dict[str, RGB] = {"black": (32, 27, 27), "brown": (122, 68, 22), "blond": (236, 200, 88),
                        "red": (196, 64, 20), "grey": (200, 200, 200)}


@dataclass(frozen=True, eq=False)
class FaceSpec:
    """Everything that decides one face's picture: its attributes and every nuisance parameter.

    ``attrs`` is the int64 attribute vector (value indices in the order of ``ATTRIBUTES``). The nuisance
    parameters are all drawn for every face whatever its attributes (:func:`sample_face`), so
    ``dataclasses.replace(spec, attrs=with_value(spec.attrs, "hat", "yes"))`` is the same face wearing a hat.
    Lengths are in canonical units (the picture is the unit square), angles in degrees unless named ``_rad``,
    colours RGB 0..255.
    """

    attrs: np.ndarray
    # pose: the head scales and tilts about PIVOT, then head and shoulders shift
    shift_x: float
    shift_y: float
    scale: float
    tilt: float
    # light and film
    light_angle_rad: float
    light_strength: float  # relative brightness change one face radius from the face centre
    grain: float  # standard deviation of the pixel noise, in 0..255 units
    noise_seed: int
    background: RGB
    # colours
    skin_shade: float  # multiplies the skin tone
    hair_shade: float  # multiplies the hair colour
    shirt: RGB
    lips: RGB  # women's lip colour
    iris: RGB
    frame: RGB  # glasses
    hat_colour: RGB
    # shape
    eye_spacing: float  # half the distance between the eye centres
    eye_size: float
    eye_height: float
    brow_raise: float
    brow_slope: float
    nose_length: float
    nose_width: float
    mouth_width: float
    hair_volume: float  # how far the hair stands off the head (factor on the face radii)
    hair_wave: float  # amplitude of the hair outline's waviness (factor on the radii)
    hair_wave_count: int
    hair_wave_phase: float
    hairline: float  # height of the fringe's lower edge above the face centre, in face half-heights
    fringe_sag: float
    long_hair_length: float  # how far long hair falls below the chin
    long_hair_width: float  # factor on the face half-width
    glasses_radius: float
    glasses_thickness: float
    glasses_square: bool
    hat_crown_height: float
    hat_crown_width: float  # factor on the face half-width
    hat_taper: float
    hat_brim_width: float  # factor on the face half-width

    def value(self, name: str) -> str:
        """The value of attribute ``name`` (e.g. ``spec.value("hair_color") == "red"``)."""
        return BY_NAME[name].values[int(self.attrs[NAMES.index(name)])]


#: The continuous nuisance parameters and their uniform ranges, in the order they are drawn.
UNIFORM: dict[str, tuple[float, float]] = {
    "shift_x": (-0.035, 0.035), "shift_y": (-0.03, 0.03), "scale": (0.9, 1.1), "tilt": (-10.0, 10.0),
    "light_angle_rad": (0.0, 2 * math.pi), "light_strength": (0.0, 0.08), "grain": (1.0, 4.0),
    "skin_shade": (0.96, 1.04), "hair_shade": (0.92, 1.06),
    "eye_spacing": (0.074, 0.088), "eye_size": (0.88, 1.12), "eye_height": (-0.01, 0.01),
    "brow_raise": (-0.006, 0.006), "brow_slope": (-0.006, 0.006),
    "nose_length": (0.85, 1.15), "nose_width": (0.8, 1.2), "mouth_width": (0.88, 1.12),
    "hair_volume": (1.08, 1.14), "hair_wave": (0.0, 0.02), "hair_wave_phase": (0.0, 2 * math.pi),
    "hairline": (0.42, 0.5), "fringe_sag": (0.01, 0.03), "long_hair_length": (0.03, 0.1),
    "long_hair_width": (1.22, 1.34), "glasses_radius": (0.047, 0.053), "glasses_thickness": (0.03, 0.036),
    "hat_crown_height": (0.13, 0.17), "hat_crown_width": (0.92, 1.0), "hat_taper": (0.0, 0.15),
    "hat_brim_width": (1.6, 1.9),
}
#: The colours, as uniform (hue, saturation, value) ranges in HSV, in the order they are drawn.
COLOURS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    # Cool hues, never grey: kept apart from every skin tone and hair colour.
    "background": ((0.25, 0.9), (0.25, 0.55), (0.5, 0.92)),
    "shirt": ((0.0, 1.0), (0.3, 0.8), (0.3, 0.85)),
    "lips": ((0.93, 1.02), (0.6, 0.85), (0.7, 0.92)),
    "iris": ((0.05, 0.65), (0.4, 0.7), (0.25, 0.55)),
    "frame": ((0.0, 1.0), (0.0, 0.6), (0.04, 0.2)),
    # Saturated cool colours: a hat never takes a hair colour.
    "hat_colour": ((0.3, 0.85), (0.6, 0.9), (0.3, 0.65)),
}


def _between(u: float, bounds: tuple[float, float]) -> float:
    return bounds[0] + u * (bounds[1] - bounds[0])


def _face_stream(seed: int, index: int, probs: Mapping[str, np.ndarray] | None) -> tuple[np.random.Generator,
                                                                                         np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return rng, sample_attributes(rng, frequencies() if probs is None else probs)


def face_attributes(seed: int, index: int, probs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """The attribute vector of face ``index`` of stream ``seed`` (``sample_face(...).attrs``, at a fraction of the
    cost: for captions, which need no picture)."""
    return _face_stream(seed, index, probs)[1]


def sample_face(seed: int, index: int, probs: Mapping[str, np.ndarray] | None = None) -> FaceSpec:
    """Face ``index`` of the stream ``seed``: the same (seed, index) gives the same face on any machine.

    The attributes are drawn first (``sample_attributes`` with ``probs``, default: the table's frequencies), then
    every nuisance parameter, in one block of uniform numbers whose order (:data:`UNIFORM`, :data:`COLOURS`, then
    the discrete ones) never looks at the attributes.
    """
    rng, attrs = _face_stream(seed, index, probs)
    draws = iter(rng.random(len(UNIFORM) + 3 * len(COLOURS) + 3).tolist())
    values: dict = {name: _between(next(draws), bounds) for name, bounds in UNIFORM.items()}
    for name, ranges in COLOURS.items():
        h, sat, val = (_between(next(draws), bounds) for bounds in ranges)
        values[name] = tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, sat, val))
    values["hair_wave_count"] = 5 + int(next(draws) * 5)
    values["glasses_square"] = next(draws) < 0.5
    values["noise_seed"] = int(next(draws) * 2**31)
    return FaceSpec(attrs=attrs, **values)


# ----- geometry ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One drawn shape, in canonical coordinates: a filled polygon (``closed``) or a stroke along ``points``.

    ``tag``: the binary attribute (eyeglasses, smiling, beard, hat) whose value decides whether and how it is drawn
    (:func:`attribute_box` reads it); None for the rest.
    """

    points: np.ndarray  # P×2
    fill: RGB | RGBA | None
    outline: RGB | None = None
    width: float = 0.0
    closed: bool = True
    tag: str | None = None
    head: bool = True  # moves with the head (tilt); else with the shoulders


@functools.lru_cache(maxsize=None)
def _unit_steps(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def _ellipse(cx: float, cy: float, rx: float, ry: float, t0: float = 0.0, t1: float = 2 * math.pi,
             n: int = 48, wave: tuple[float, int, float] = (0.0, 0, 0.0)) -> np.ndarray:
    """Points of the arc t0..t1 of an ellipse (angle t: x = cx + rx cos t, y = cy + ry sin t), radii optionally
    modulated by ``wave`` = (amplitude, count, phase)."""
    t = t0 + (t1 - t0) * _unit_steps(max(3, int(n * abs(t1 - t0) / (2 * math.pi)) + 1))
    amplitude, count, phase = wave
    r = 1.0 + amplitude * np.sin(count * t + phase) if amplitude else 1.0
    points = np.empty((len(t), 2))
    points[:, 0] = cx + rx * r * np.cos(t)
    points[:, 1] = cy + ry * r * np.sin(t)
    return points


def _above(cx: float, cy: float, rx: float, ry: float, cut: float, n: int = 48,
           wave: tuple[float, int, float] = (0.0, 0, 0.0)) -> np.ndarray:
    """The arc of an ellipse above the line y = ``cut`` (over the top), from its left end to its right end."""
    c = float(np.clip((cut - cy) / ry, -1.0, 1.0))
    return _ellipse(cx, cy, rx, ry, math.pi - math.asin(c), 2 * math.pi + math.asin(c), n, wave)


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(min(255, int(round(c * factor))) for c in colour)


def _mix(colour: RGB, other: RGB, weight: float) -> RGB:
    return tuple(int(round((1 - weight) * c + weight * o)) for c, o in zip(colour, other))


def _face_radii(spec: FaceSpec) -> tuple[float, float]:
    ratio = FACE_RATIO[spec.value("face_shape")]
    return FACE_SIZE * math.sqrt(ratio), FACE_SIZE / math.sqrt(ratio)


def parts(spec: FaceSpec) -> list[Part]:
    """Every shape of the face, back to front, in canonical coordinates before the pose."""
    cx, cy = FACE_CENTRE
    rx, ry = _face_radii(spec)
    woman = spec.value("gender") == "woman"
    skin = _shade(SKIN[spec.value("skin_tone")], spec.skin_shade)
    hair = _shade(HAIR[spec.value("hair_color")], spec.hair_shade)
    length = spec.value("hair_length")
    dark_skin, line_skin = _shade(skin, 0.8), _shade(skin, 0.55)
    hair_edge = _shade(hair, 0.6)
    wave = (spec.hair_wave, spec.hair_wave_count, spec.hair_wave_phase)
    chin = cy + ry
    out: list[Part] = []
    add = out.append

    # Shoulders and neck (they do not tilt).
    add(Part(_ellipse(0.5, 1.0, 0.38, 0.2), spec.shirt, _shade(spec.shirt, 0.6), 0.008, head=False))
    add(Part(np.array([[0.445, chin - 0.08], [0.555, chin - 0.08], [0.56, 0.87], [0.44, 0.87]]),
             _shade(skin, 0.88), head=False))

    # Hair behind the head: long hair falls beside the face to below the chin; a short cap ends at the ears.
    hx, hy = rx * spec.hair_volume, ry * spec.hair_volume
    if length == "long":
        side, bottom = rx * spec.long_hair_width, chin + spec.long_hair_length
        top = _above(cx, cy, hx, hy, cy, wave=wave)
        hem = np.stack([np.linspace(cx + side, cx - side, 9),
                        bottom - 0.015 * np.cos(np.linspace(-math.pi, math.pi, 9) * 2)], axis=1)
        add(Part(np.concatenate([top, [[cx + side, cy + 0.3 * ry]], hem, [[cx - side, cy + 0.3 * ry]]]),
                 hair, hair_edge, 0.006))
    elif length == "short":
        add(Part(_above(cx, cy, hx, hy, cy + 0.05 * ry, wave=wave), hair, hair_edge, 0.006))

    # Ears, and the tufts above them that every face keeps: a bald head shows its hair colour there, so its tufts
    # are fuller.
    for sign in (-1, 1):
        add(Part(_ellipse(cx + sign * rx * 0.97, cy + 0.02, 0.028, 0.045, n=24), dark_skin, line_skin, 0.005))
    tuft = (0.046, 0.08) if length == "bald" else (0.036, 0.065)
    for sign in (-1, 1):
        add(Part(_ellipse(cx + sign * rx * 0.97, cy - 0.3 * ry, *tuft, n=24), hair, hair_edge, 0.005))

    add(Part(_ellipse(cx, cy, rx, ry, n=64), skin, line_skin, 0.006))

    # Fringe over the forehead (short and long hair); a bald scalp gets a shine instead.
    hairline = cy - spec.hairline * ry
    if length == "bald":
        add(Part(_ellipse(cx - 0.25 * rx, cy - 0.72 * ry, 0.045, 0.022, n=24), (255, 255, 255, 70)))
    else:
        top = _above(cx, cy, rx * 1.03, ry * 1.03, hairline, wave=wave)
        xs = np.linspace(top[-1, 0], top[0, 0], 13)
        sag = spec.fringe_sag * (1 - ((xs - cx) / (rx * 1.03)) ** 2)
        add(Part(np.concatenate([top, np.stack([xs, hairline + sag], axis=1)]), hair, hair_edge, 0.006))

    if woman:  # blush
        for sign in (-1, 1):
            add(Part(_ellipse(cx + sign * 0.55 * rx, cy + 0.3 * ry, 0.032, 0.02, n=24), (235, 70, 90, 110)))

    # Eyes: sclera, iris, pupil, upper lid (heavier on women, with lashes).
    eye_y = cy - 0.1 * ry + spec.eye_height
    ex, erx, ery = spec.eye_spacing, 0.03 * spec.eye_size, 0.017 * spec.eye_size
    for sign in (-1, 1):
        x = cx + sign * ex
        add(Part(_ellipse(x, eye_y, erx, ery, n=24), (250, 250, 246)))
        add(Part(_ellipse(x, eye_y, 0.013 * spec.eye_size, 0.013 * spec.eye_size, n=20), spec.iris))
        add(Part(_ellipse(x, eye_y, 0.006, 0.006, n=12), (15, 12, 12)))
        lid = _ellipse(x, eye_y, erx, ery, math.pi, 2 * math.pi, n=24)
        add(Part(lid, (20, 15, 15), width=0.011 if woman else 0.006, closed=False))
        if woman:
            for t in (0.35, 0.7, 1.05):  # from the outer corner
                angle = 2 * math.pi - t if sign > 0 else math.pi + t
                root = np.array([x + erx * math.cos(angle), eye_y + ery * math.sin(angle)])
                tip = root + np.array([sign * 0.011, -0.012])
                add(Part(np.stack([root, tip]), (20, 15, 15), width=0.005, closed=False))

    # Eyebrows in the hair colour, darkened: thick and straight on men, thin and arched on women.
    brow = _shade(hair, 0.7)
    brow_y = eye_y - 0.045 + spec.brow_raise
    for sign in (-1, 1):
        x0, x1 = cx + sign * (ex - 0.034), cx + sign * (ex + 0.036)
        if woman:
            xs = np.linspace(x0, x1, 7)
            ys = brow_y - 0.012 * np.sin(np.linspace(0, math.pi, 7)) - spec.brow_slope * np.linspace(-1, 1, 7) * sign
            add(Part(np.stack([xs, ys], axis=1), brow, width=0.009, closed=False))
        else:
            y0, y1 = brow_y + spec.brow_slope, brow_y - spec.brow_slope
            add(Part(np.array([[x0, y0 - 0.011], [x1, y1 - 0.011], [x1, y1 + 0.011], [x0, y0 + 0.011]]), brow,
                     _shade(brow, 0.8), 0.003))

    # Nose: a shaded ridge and its base.
    nose_y = cy + 0.3 * ry * spec.nose_length
    nw = 0.016 * spec.nose_width
    add(Part(np.array([[cx + 0.004, eye_y + 0.02], [cx + nw, nose_y], [cx - nw * 0.7, nose_y + 0.004]]),
             line_skin, width=0.007, closed=False))

    # Beard: jaw, chin and moustache in the hair colour (drawn under the mouth).
    mouth_y = cy + 0.58 * ry
    if spec.value("beard") == "yes":
        start = math.asin(0.2 / 1.07)
        jaw = _ellipse(cx, cy, rx * 1.05, ry * 1.07, start, math.pi - start, n=64, wave=(spec.hair_wave * 0.5,
                                                                                        spec.hair_wave_count * 2, 0))
        upper = np.array([[cx - rx * 0.92, cy + 0.2 * ry], [cx - rx * 0.55, cy + 0.46 * ry],
                          [cx - 0.05, mouth_y - 0.032], [cx + 0.05, mouth_y - 0.032],
                          [cx + rx * 0.55, cy + 0.46 * ry], [cx + rx * 0.92, cy + 0.2 * ry]])
        add(Part(np.concatenate([jaw, upper]), _shade(hair, 0.85), hair_edge, 0.006, tag="beard"))

    # Mouth: open with teeth when smiling, closed and flat otherwise; coloured lips on women.
    lip_line = spec.lips if woman else line_skin
    if spec.value("smiling") == "yes":
        mw, depth = 0.072 * spec.mouth_width, 0.066
        # Corners raised above the middle of the upper edge: a smile, not just an open mouth.
        top = np.array([[cx + mw, mouth_y - 0.02], [cx, mouth_y - 0.008], [cx - mw, mouth_y - 0.02]])
        bottom = _ellipse(cx, mouth_y - 0.01, mw, depth, math.pi, 0.0, n=32)[1:-1]  # left to right
        mouth = np.concatenate([top, bottom])
        add(Part(mouth, (96, 18, 28), lip_line, 0.012 if woman else 0.008, tag="smiling"))
        teeth = mouth.copy()
        teeth[:, 1] = np.minimum(teeth[:, 1], mouth_y + 0.024)
        teeth[:, 0] = cx + (teeth[:, 0] - cx) * 0.9
        add(Part(teeth, (255, 255, 250), tag="smiling"))
    else:
        mw = 0.05 * spec.mouth_width
        if woman:
            add(Part(_ellipse(cx, mouth_y, mw, 0.016, n=32), spec.lips, _shade(spec.lips, 0.75), 0.004,
                     tag="smiling"))
            add(Part(np.array([[cx - mw * 0.9, mouth_y], [cx + mw * 0.9, mouth_y]]), _shade(spec.lips, 0.5),
                     width=0.004, closed=False, tag="smiling"))
        else:
            add(Part(np.array([[cx - mw, mouth_y], [cx, mouth_y + 0.002], [cx + mw, mouth_y]]), line_skin,
                     width=0.01, closed=False, tag="smiling"))

    # Glasses: two thick dark rims over tinted lenses, a bridge and temples to the ears.
    if spec.value("eyeglasses") == "yes":
        r, w = spec.glasses_radius, spec.glasses_thickness
        for sign in (-1, 1):
            x = cx + sign * ex
            if spec.glasses_square:
                rim = np.array([[x - r, eye_y - r * 0.8], [x + r, eye_y - r * 0.8], [x + r, eye_y + r * 0.8],
                                [x - r, eye_y + r * 0.8]])
            else:
                rim = _ellipse(x, eye_y, r, r * 0.85, n=32)
            add(Part(rim, (255, 255, 255, 30), spec.frame, w, tag="eyeglasses"))
            add(Part(np.array([[x + sign * r, eye_y - 0.01], [cx + sign * rx * 0.93, eye_y - 0.006]]), spec.frame,
                     width=w * 0.6, closed=False, tag="eyeglasses"))
        add(Part(np.array([[cx - ex + r, eye_y - 0.008], [cx, eye_y - 0.014], [cx + ex - r, eye_y - 0.008]]),
                 spec.frame, width=w * 0.8, closed=False, tag="eyeglasses"))

    # Hat: crown, band and brim, sitting above the hairline so the fringe shows below it.
    if spec.value("hat") == "yes":
        brim_y = cy - 0.9 * ry
        half = rx * spec.hat_crown_width
        top_half = half * (1 - spec.hat_taper)
        crown_top = brim_y - spec.hat_crown_height
        dome = _ellipse(cx, crown_top, top_half, 0.035, math.pi, 2 * math.pi, n=24)
        crown = np.concatenate([[[cx - half, brim_y]], dome, [[cx + half, brim_y]]])
        edge = _shade(spec.hat_colour, 0.45)
        add(Part(crown, spec.hat_colour, edge, 0.008, tag="hat"))
        band_top = brim_y - 0.035
        band_half = half - (half - top_half) * 0.035 / spec.hat_crown_height
        add(Part(np.array([[cx - half, brim_y], [cx - band_half, band_top], [cx + band_half, band_top],
                           [cx + half, brim_y]]), _mix(spec.hat_colour, (10, 10, 10), 0.55), tag="hat"))
        add(Part(_ellipse(cx, brim_y, rx * spec.hat_brim_width, 0.028, n=48), _shade(spec.hat_colour, 0.85),
                 edge, 0.007, tag="hat"))
    return out


# ----- drawing ----------------------------------------------------------------------------------------------------

def _poses(spec: FaceSpec) -> tuple[np.ndarray, np.ndarray]:
    """(head, shoulders) affine maps, each 2×3, from canonical coordinates to canonical coordinates."""
    pivot, shift = np.array(PIVOT), np.array([spec.shift_x, spec.shift_y])

    def about_pivot(linear: np.ndarray) -> np.ndarray:
        return np.concatenate([linear, (pivot - linear @ pivot + shift)[:, None]], axis=1)

    angle = math.radians(spec.tilt)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return about_pivot(spec.scale * rotation), about_pivot(spec.scale * np.eye(2))


def _placed(part: Part, head: np.ndarray, body: np.ndarray) -> np.ndarray:
    pose = head if part.head else body
    return part.points @ pose[:, :2].T + pose[:, 2]


@functools.lru_cache(maxsize=4)
def _pixel_centres(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    return xs, ys


def render(spec: FaceSpec, image_size: int) -> np.ndarray:
    """The face as uint8 ``image_size``×``image_size``×3 RGB.

    Drawn at ``SUPERSAMPLE``× the size, box-filtered down, then lit (a linear gradient across the face, zero at its
    centre) and grained (Gaussian pixel noise from ``spec.noise_seed``).
    """
    size = image_size * SUPERSAMPLE
    canvas = Image.new("RGB", (size, size), spec.background)
    draw = ImageDraw.Draw(canvas, "RGBA")  # RGBA fills blend (blush, lens tint, shine)
    head, body = _poses(spec)
    shapes = parts(spec)
    # One transform for every point, then flat coordinate lists (what ImageDraw reads fastest).
    points = np.concatenate([part.points for part in shapes])
    on_head = np.repeat([part.head for part in shapes], [len(part.points) for part in shapes])[:, None]
    placed = np.where(on_head, points @ head[:, :2].T + head[:, 2], points @ body[:, :2].T + body[:, 2]) * size
    flat = placed.ravel().tolist()
    start, scale = 0, size * spec.scale
    for part in shapes:
        xy, start = flat[start:start + 2 * len(part.points)], start + 2 * len(part.points)
        width = max(1, int(round(part.width * scale)))
        # Round joints only where a stroke turns sharply (few points); on the many-point curves the
        # square joints do not show, and PIL draws round ones in Python, one vertex at a time.
        joint = "curve" if len(part.points) <= 8 else None
        if part.closed:
            if part.fill is not None:
                draw.polygon(xy, fill=part.fill)
            if part.outline is not None:
                draw.line(xy + xy[:2], fill=part.outline, width=width, joint=joint)
        else:
            draw.line(xy, fill=part.fill, width=width, joint=joint)
    small = np.asarray(canvas.resize((image_size, image_size), Image.BOX), dtype=np.float32)

    centre = (head[:, :2] @ np.array(FACE_CENTRE) + head[:, 2]) * image_size
    xs, ys = _pixel_centres(image_size)
    along = (xs - centre[0]) * math.cos(spec.light_angle_rad) + (ys - centre[1]) * math.sin(spec.light_angle_rad)
    radius = FACE_SIZE * spec.scale * image_size
    light = 1.0 + spec.light_strength * np.clip(along / radius, -1.5, 1.5)
    noise = np.random.default_rng(spec.noise_seed).standard_normal((image_size, image_size, 3), dtype=np.float32)
    return np.clip(small * light[..., None] + spec.grain * noise + 0.5, 0, 255).astype(np.uint8)


def attribute_box(spec: FaceSpec, name: str, image_size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), in output pixels (x1, y1 exclusive): where the value of attribute ``name`` can change the
    picture of this face, whatever the value: the box around its parts (strokes included) for every value, plus
    the pixels they share with a supersampled neighbour."""
    points = []
    head, body = _poses(spec)
    for value in BY_NAME[name].values:
        variant = dataclasses.replace(spec, attrs=with_value(spec.attrs, name, value))
        for part in parts(variant):
            if part.tag == name:
                placed = _placed(part, head, body)
                margin = part.width * spec.scale / 2
                points += [placed.min(axis=0) - margin, placed.max(axis=0) + margin]
    if not points:
        return (0, 0, 0, 0)
    low, high = np.min(points, axis=0) * image_size, np.max(points, axis=0) * image_size
    x0, y0 = np.clip(np.floor(low).astype(int) - 1, 0, image_size)
    x1, y1 = np.clip(np.ceil(high).astype(int) + 1, 0, image_size)
    return int(x0), int(y0), int(x1), int(y1)
