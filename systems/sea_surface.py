"""A SYNTHETIC sea-surface temperature generator: an idealised Gulf of Mexico, for tests and demos.

These fields are not observations. They are made to have what matters for learning SST dynamics: a land mask
shaped like the Gulf's, a dominant annual cycle like the one COADS observes there (basin mean about 23 C in
February, 29 C in August, a colder and more seasonal northern shelf), and intraseasonal variability from a
meandering Loop Current, the warm eddies it sheds, and synoptic weather. Real daily Gulf SST must come from
the user's own NOAA OISST files (:func:`dynlearn.datasets.sst.read_oisst`).

Model: temperature T (degrees Celsius) on a latitude-longitude grid over 18..31 N, 98..80 W (cell centres),
advected by a divergence-free, time-dependent velocity and relaxed towards a seasonal equilibrium,

    dT/dt = -div(u T) + K lap(T) + (T_eq(lat, t) - T) / tau + F(x, y, t),

- u = (-d psi/dy, d psi/dx) with psi = m(x, y) [psi_through + psi_loop + sum of eddies], m a smoothed ocean
  mask (so the flow keeps off land); psi_through carries Caribbean water north through the Yucatan Channel and
  out through the Florida Straits, psi_loop is an anticyclone whose northward reach oscillates (period
  ``loop_period`` days, with a random phase drift), and at each maximum of the loop an anticyclonic eddy
  detaches and drifts west at ``eddy_speed`` km/day while decaying;
- T_eq(lat, t) = mean(lat) + amplitude(lat) cos(2 pi (t - peak)/365.25);
- F: synoptic weather, a few large-scale patterns with red-noise amplitudes (periods of 5 to 60 days), stronger
  in winter (cold fronts);
- numerics: psi on cell corners, face velocities by differences of psi (exactly divergence-free), first-order
  upwind fluxes (total-variation diminishing with ``ssprk3``), central diffusion; boundary cells of the open
  sea take T_eq; local flat metric at 24.5 N (km); step from the CFL limit (Courant number 0.8); psi is
  evaluated at whole days and interpolated linearly in time between them (the flow changes over weeks).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from dynlearn.integration.rollout import rollout
from dynlearn._checks import as_integer, as_positive_number

__all__ = ["SyntheticSeaSurface", "GULF_COASTLINE", "gulf_land_mask"]

KM_PER_DEGREE = 111.2
REFERENCE_LATITUDE = 24.5
SOUTH, NORTH, WEST, EAST = 18.0, 31.0, -98.0, -80.0

#: The ocean's outline (longitude, latitude), counter-clockwise: the Gulf with the Yucatan Channel, the Florida
#: Straits and the Caribbean south of Cuba; a simplified coastline good to a few tenths of a degree.
GULF_COASTLINE = (
    (-80.0, 25.3), (-80.5, 25.2), (-81.1, 25.2), (-81.8, 26.1), (-82.6, 27.5), (-82.8, 28.2), (-82.7, 29.0),
    (-83.6, 29.9), (-84.3, 30.0), (-85.4, 29.7), (-86.5, 30.4), (-88.0, 30.4), (-89.0, 30.3), (-89.4, 29.1),
    (-90.2, 29.1), (-91.5, 29.5), (-93.8, 29.7), (-94.8, 29.4), (-96.4, 28.3), (-97.3, 27.5), (-97.4, 26.0),
    (-97.6, 24.5), (-97.7, 22.0), (-97.2, 21.0), (-96.3, 19.3), (-95.2, 18.7), (-94.2, 18.2), (-92.0, 18.6),
    (-91.2, 18.7), (-90.6, 19.8), (-90.3, 21.0), (-89.0, 21.4), (-87.5, 21.5), (-86.8, 21.3), (-87.3, 20.0),
    (-87.6, 18.0), (-80.0, 18.0), (-80.0, 21.6), (-81.5, 21.6), (-83.0, 21.9), (-84.9, 21.9), (-84.5, 22.7),
    (-83.0, 23.0), (-81.5, 23.1), (-80.0, 23.2),
)


def _inside(polygon: tuple[tuple[float, float], ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule: True where the point (x, y) lies inside the closed polygon."""
    inside = np.zeros(x.shape, dtype=bool)
    vertices = np.asarray(polygon)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


def gulf_land_mask(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """True on land for the cell centres latitude x longitude (degrees; longitudes in -180..180)."""
    lon, lat = np.meshgrid(longitude, latitude)
    return ~_inside(GULF_COASTLINE, lon, lat)


def _smooth(field: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        padded = np.pad(field, 1, mode="edge")
        field = (padded[1:-1, 1:-1] * 4 + padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 8
    return field


@dataclasses.dataclass
class SyntheticSeaSurface:
    """The synthetic Gulf (see the module docstring). Lengths in km, time in days, temperature in C.

    ``resolution``: grid spacing in degrees (0.25 like OISST: 52 x 72 cells). Call :meth:`generate`.
    """

    resolution: float = 0.25
    relaxation_time: float = 30.0  # days
    diffusivity: float = 100.0  # km^2/day (about 1200 m^2/s)
    through_flow_speed: float = 80.0  # km/day in the core of the Yucatan-Florida current (about 0.9 m/s)
    loop_speed: float = 60.0  # km/day, swirl of the loop anticyclone
    loop_period: float = 300.0  # days between loop extensions (and eddy sheddings)
    eddy_speed: float = 4.0  # km/day westward drift of a shed eddy
    eddy_decay: float = 240.0  # days
    weather_amplitude: float = 0.08  # C/day, standard deviation of the synoptic forcing
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.resolution, (int, float)) and 0.05 <= self.resolution <= 2.0):
            raise ValueError(f"synthetic SST: resolution must be between 0.05 and 2 degrees, got {self.resolution!r}")
        for name in ("relaxation_time", "through_flow_speed", "loop_speed", "loop_period", "eddy_decay"):
            as_positive_number(f"synthetic SST: {name}", getattr(self, name))
        for name in ("diffusivity", "eddy_speed", "weather_amplitude"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"synthetic SST: {name} must be a finite number >= 0, got {value!r}")
        h = self.resolution
        self.latitude = SOUTH + h / 2 + h * np.arange(int(round((NORTH - SOUTH) / h)))
        self.longitude = WEST + h / 2 + h * np.arange(int(round((EAST - WEST) / h)))
        self.mask = gulf_land_mask(self.latitude, self.longitude)
        self.dx = h * KM_PER_DEGREE * math.cos(math.radians(REFERENCE_LATITUDE))
        self.dy = h * KM_PER_DEGREE
        # corners of the cells, where psi lives
        corner_lat = SOUTH + h * np.arange(self.latitude.size + 1)
        corner_lon = WEST + h * np.arange(self.longitude.size + 1)
        self._corner_lon, self._corner_lat = np.meshgrid(corner_lon, corner_lat)
        ocean = (~self.mask).astype(float)
        weight = _smooth(np.pad(ocean, 1, mode="edge"), max(1, int(round(0.5 / h))))
        weight = 0.25 * (weight[:-1, :-1] + weight[1:, :-1] + weight[:-1, 1:] + weight[1:, 1:])
        self._corner_weight = np.clip((weight - 0.25) / 0.5, 0.0, 1.0)
        rng = np.random.default_rng(self.seed)
        self._loop_phase = rng.uniform(0, 2 * np.pi)
        self._loop_drift = rng.normal(0, 1, size=4)  # slow random modulation of the loop's period
        self._weather_rng_seed = int(rng.integers(2**31))
        lat = self.latitude[:, None] * np.ones_like(self.longitude)[None, :]
        north = (lat - SOUTH) / (NORTH - SOUTH)
        # equilibrium: warmer, less seasonal in the south (27.5 C +- 1.4) than on the northern shelf (24 C +- 6)
        self._equilibrium_mean = 27.5 - 4.0 * north**1.5
        self._equilibrium_amplitude = 2.2 + 6.5 * north**2
        self._peak_day = 205.0  # the response lags by about a month: warmest in August, as observed

    # ---------------------------------------------------------------------------------------------------------
    def equilibrium(self, t: float) -> np.ndarray:
        """T_eq on the grid at day ``t`` (t = 0 is 1 January)."""
        return self._equilibrium_mean + self._equilibrium_amplitude * np.cos(2 * np.pi * (t - self._peak_day) / 365.25)

    def loop_extension(self, t: float) -> float:
        """Northern reach of the Loop Current, degrees north."""
        drift = sum(0.25 * a * math.sin(2 * math.pi * t / (1000.0 + 700.0 * k)) for k, a in enumerate(self._loop_drift))
        return 25.6 + 1.6 * math.sin(2 * math.pi * t / self.loop_period + self._loop_phase + drift)

    def _eddies(self, t: float) -> list[tuple[float, float, float]]:
        """(longitude, latitude, strength) of the shed eddies alive at day t (strength in units of loop_speed)."""
        eddies = []
        # the loop peaks when its phase passes pi/2: shedding times, back to ~3 decay times
        first = math.floor((t - 3 * self.eddy_decay) / self.loop_period) - 1
        for k in range(first, math.floor(t / self.loop_period) + 2):
            birth = (k + 0.25) * self.loop_period - self._loop_phase / (2 * np.pi) * self.loop_period
            age = t - birth
            if age <= 0:
                continue
            longitude = -88.2 - self.eddy_speed * age / (KM_PER_DEGREE * math.cos(math.radians(REFERENCE_LATITUDE)))
            if longitude < WEST + 1.0:
                continue
            growth = min(1.0, age / 30.0)
            eddies.append((longitude, 26.5 - 0.002 * age, growth * math.exp(-age / self.eddy_decay)))
        return eddies

    def stream_function(self, t: float) -> np.ndarray:
        """psi (km^2/day) on the cell corners at day ``t``."""
        lon, lat = self._corner_lon, self._corner_lat
        km_x = KM_PER_DEGREE * math.cos(math.radians(REFERENCE_LATITUDE))
        width = 45.0  # km, half-width of the current
        reach = self.loop_extension(t)
        # through-flow: the region east of x = -85.7 and south of the loop's northern edge is "inside"
        east = (lon + 85.7) * km_x
        south = (min(reach, 25.0) - lat) * KM_PER_DEGREE
        inside = -width * np.logaddexp(-east / width, -south / width)  # a smooth min(east, south)
        psi = self.through_flow_speed * width * (1 + np.tanh(inside / width))
        # the loop: an anticyclone (psi > 0 turns clockwise) under the extension
        centre_lat = 22.8 + 0.55 * (reach - 22.8)
        size_y = 0.6 * (reach - 22.5) * KM_PER_DEGREE
        size_x = 160.0
        r2 = ((lon + 86.8) * km_x / size_x) ** 2 + ((lat - centre_lat) * KM_PER_DEGREE / size_y) ** 2
        psi = psi + self.loop_speed * size_x * 1.2 * np.exp(-r2)
        for eddy_lon, eddy_lat, strength in self._eddies(t):
            r2 = ((lon - eddy_lon) * km_x) ** 2 + ((lat - eddy_lat) * KM_PER_DEGREE) ** 2
            psi = psi + strength * self.loop_speed * 1.65 * 90.0 * np.exp(-r2 / 90.0**2)
        return psi * self._corner_weight

    def velocity(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Face velocities (km/day): u on the west/east faces ``(n_lat, n_lon + 1)``, v on the south/north faces
        ``(n_lat + 1, n_lon)``; their discrete divergence is zero."""
        psi = self.stream_function(t)
        u = -(psi[1:, :] - psi[:-1, :]) / self.dy
        v = (psi[:, 1:] - psi[:, :-1]) / self.dx
        return u, v

    def max_speed(self, days: float) -> float:
        return max(float(np.abs(np.concatenate([c.ravel() for c in self.velocity(t)])).max())
                   for t in np.linspace(0, days, 25))

    # ---------------------------------------------------------------------------------------------------------
    def _weather(self, days: int) -> np.ndarray:
        """Synoptic forcing amplitudes ``(days + 2, 4)`` on a daily grid: red noise with periods of 5..60 days."""
        rng = np.random.default_rng(self._weather_rng_seed)
        n = days + 2
        frequencies = np.fft.rfftfreq(4 * n)
        band = (frequencies >= 1 / 60) & (frequencies <= 1 / 5)
        spectrum = np.zeros_like(frequencies)
        spectrum[band] = 1.0 / frequencies[band]
        noise = np.fft.irfft(np.sqrt(spectrum)[:, None] * (rng.normal(size=(frequencies.size, 4))
                                                            + 1j * rng.normal(size=(frequencies.size, 4))), axis=0)[:n]
        noise /= noise.std(axis=0, keepdims=True)
        return noise * self.weather_amplitude

    def _weather_patterns(self) -> np.ndarray:
        lat = (self.latitude[:, None] - 24.5) / 6.5 * np.ones((1, self.longitude.size))
        lon = (self.longitude[None, :] + 89.0) / 9.0 * np.ones((self.latitude.size, 1))
        north = np.clip((lat + 1) / 2, 0, 1)
        return np.stack([0.5 + north, north * lon, np.sin(np.pi * lat / 2) * 0.5, lon * 0.5])

    def generate(
        self,
        days: int = 6 * 365,
        *,
        spin_up_days: int = 365,
        start: str = "2012-01-01",
        courant: float = 0.8,
        progress: bool = False,
        device: torch.device | str = "cpu",
    ) -> dict[str, Any]:
        """Daily fields over ``days`` days (after ``spin_up_days`` discarded): a dict with ``temperature``
        ``(days, n_lat, n_lon)`` (C, NaN on land), ``latitude``, ``longitude``, ``dates`` (``datetime64[s]``,
        midnight of each day from ``start``), ``mask`` and the settings."""
        from dynlearn.progress import progress as progress_display

        as_integer("synthetic SST: days", days)
        as_integer("synthetic SST: spin_up_days", spin_up_days, minimum=0)
        if not 0 < courant <= 1:
            raise ValueError(f"synthetic SST: courant must be in (0, 1] (upwind advection is unstable beyond 1), got {courant}")
        try:
            first_day = np.datetime64(start, "D")
        except ValueError:
            raise ValueError(f"synthetic SST: start must be a date such as '2012-01-01', got {start!r}") from None
        day_of_year = float((first_day - first_day.astype("datetime64[Y]").astype("datetime64[D]")).astype(int))
        total = spin_up_days + days
        speed = self.max_speed(total)
        steps_per_day = max(1, math.ceil(speed / (courant * min(self.dx, self.dy))),
                            math.ceil(4 * self.diffusivity / (0.5 * min(self.dx, self.dy) ** 2)))
        dt = 1.0 / steps_per_day
        weather = self._weather(total)
        patterns = self._weather_patterns()
        kwargs = {"dtype": torch.float64, "device": torch.device(device)}
        patterns_t = torch.as_tensor(patterns, **kwargs)
        seasonal_phase = 1.0 / 365.25

        velocities: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def velocity(day: int) -> tuple[torch.Tensor, torch.Tensor]:
            if day not in velocities:
                velocities.pop(day - 2, None)
                velocities[day] = tuple(torch.as_tensor(c, **kwargs) for c in self.velocity(day_of_year - spin_up_days + day))
            return velocities[day]

        def field(t: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
            time = float(t)  # model day from the start of the spin-up
            calendar_day = day_of_year - spin_up_days + time
            # the flow changes over weeks: psi at whole days, linear in time between them (still divergence-free)
            index = min(int(time), total - 1)
            fraction = time - index
            (u0, v0), (u1, v1) = velocity(index), velocity(index + 1)
            u, v = (1 - fraction) * u0 + fraction * u1, (1 - fraction) * v0 + fraction * v1
            equilibrium = torch.as_tensor(self.equilibrium(calendar_day), **kwargs)
            # ghost cells take the equilibrium temperature (open sea); land cells carry no flow
            padded = torch.cat([equilibrium[:, :1], temperature, equilibrium[:, -1:]], dim=1)
            flux_x = torch.where(u > 0, u * padded[:, :-1], u * padded[:, 1:])
            padded = torch.cat([equilibrium[:1], temperature, equilibrium[-1:]], dim=0)
            flux_y = torch.where(v > 0, v * padded[:-1], v * padded[1:])
            advection = -(flux_x[:, 1:] - flux_x[:, :-1]) / self.dx - (flux_y[1:] - flux_y[:-1]) / self.dy
            # diffusion with zero-gradient edges
            wide = torch.cat([temperature[:, :1], temperature, temperature[:, -1:]], dim=1)
            tall = torch.cat([temperature[:1], temperature, temperature[-1:]], dim=0)
            laplacian = ((wide[:, 2:] - 2 * temperature + wide[:, :-2]) / self.dx**2
                         + (tall[2:] - 2 * temperature + tall[:-2]) / self.dy**2)
            amplitudes = torch.as_tensor((1 - fraction) * weather[index] + fraction * weather[index + 1], **kwargs)
            winter = 1.0 + 0.8 * math.cos(2 * math.pi * (calendar_day - 15.0) * seasonal_phase)
            forcing = winter * torch.einsum("p,pyx->yx", amplitudes, patterns_t)
            return advection + self.diffusivity * laplacian + (equilibrium - temperature) / self.relaxation_time + forcing

        state = torch.as_tensor(self.equilibrium(day_of_year - spin_up_days), **kwargs)
        out = np.empty((days, *self.mask.shape))
        for day in progress_display(range(total), total=total, description="synthetic SST (days)", enabled=progress):
            if day >= spin_up_days:
                out[day - spin_up_days] = state.cpu().numpy()
            state = rollout(field, state, t0=float(day), dt=dt, n_steps=steps_per_day, scheme="ssprk3")[-1]
            if not bool(torch.isfinite(state).all()):
                raise FloatingPointError(f"synthetic SST: the integration blew up on day {day}")
        out[:, self.mask] = np.nan
        dates = (first_day + np.arange(days).astype("timedelta64[D]")).astype("datetime64[s]")
        return {"temperature": out, "latitude": self.latitude.copy(), "longitude": self.longitude.copy(),
                "dates": dates, "mask": self.mask.copy(), "steps_per_day": steps_per_day,
                "settings": dataclasses.asdict(self)}
