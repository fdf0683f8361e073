"""
Sea-surface temperature: real observations and the synthetic Gulf
=================================================================

Real observations through the OISST pipeline, and the synthetic Gulf of Mexico.

Reads the real observations that install from package registries through the same region selection, masking,
unit handling and preprocessing as NOAA OISST files:

- COADS monthly SST climatology (Debian: ``apt-get install ferret-datasets``): the Gulf of Mexico's seasonal
  cycle and land mask at 2 degrees;
- OSTIA monthly SST 2006-2010 (PyPI: ``pip install iris-sample-data``, in kelvin): the Nino 3.4 index, which
  shows the 2006/07 El Nino, the 2007/08 La Nina and the 2009/10 El Nino;

then generates two years of SYNTHETIC Gulf SST and compares its seasonal cycle with COADS. Six years of real
daily Gulf SST come from your own OISST files: ``dynlearn import oisst sst.day.mean.20*.nc -o gulf.h5``.
Where a data package is not installed, its panel stays empty and the script says so. Run it (the figure below is
drawn at build time with one synthetic year)::

    python examples/sea_surface_temperature.py [-o sst-example] [--synthetic-years 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dynlearn.datasets.climatology import fit_normalisation
from dynlearn.datasets.sst import REGIONS, SeaSurfaceTemperature, coads_climatology_path, ostia_monthly_path, read_sst
from dynlearn.systems.sea_surface import SyntheticSeaSurface

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def monthly_cycle(record: SeaSurfaceTemperature) -> np.ndarray:
    months = record.dates.astype("datetime64[M]").astype(int) % 12
    mean = record.ocean_mean()
    return np.array([mean[months == k].mean() for k in range(12)])


def main(output: Path, synthetic_years: int = 2) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    fields = SyntheticSeaSurface(resolution=0.5).generate(365 * synthetic_years, spin_up_days=180)
    synthetic = SeaSurfaceTemperature(fields["temperature"], fields["latitude"], fields["longitude"], fields["dates"],
                                      "day", fields["mask"], REGIONS["gulf"], (), "SYNTHETIC")
    cycle = monthly_cycle(synthetic)
    axes[0].plot(MONTHS, cycle, "o-", label="synthetic (dynlearn)")
    print("Gulf of Mexico basin-mean SST by month (C)")
    print("            " + " ".join(f"{m:>5}" for m in MONTHS))
    print("synthetic   " + " ".join(f"{v:5.1f}" for v in cycle))
    coads_path = coads_climatology_path()
    if coads_path is None:
        print("COADS: not installed (apt-get install ferret-datasets)")
    else:
        coads = read_sst(coads_path, region="gulf")
        observed = monthly_cycle(coads)
        print("COADS       " + " ".join(f"{v:5.1f}" for v in observed))
        print(f"correlation {np.corrcoef(cycle, observed)[0, 1]:.3f}, amplitude ratio "
              f"{(cycle.max() - cycle.min()) / (observed.max() - observed.min()):.2f}")
        axes[0].plot(MONTHS, observed, "s-", label="COADS climatology (observed)")
        mean_field = np.where(synthetic.mask, np.nan, np.nan_to_num(synthetic.temperature).mean(axis=0))
        axes[1].pcolormesh(synthetic.longitude, synthetic.latitude, mean_field, cmap="RdYlBu_r")
        axes[1].contour(coads.longitude, coads.latitude, coads.mask.astype(float), levels=[0.5], colors="k")
        axes[1].set_title("synthetic mean SST; black: COADS land boundary")
    axes[0].set_ylabel("SST (C)")
    axes[0].legend()
    ostia_path = ostia_monthly_path()
    if ostia_path is None:
        print("OSTIA: not installed (pip install iris-sample-data)")
    else:
        ostia = read_sst(ostia_path, region="nino34")
        anomalies = fit_normalisation(ostia, train_end="2010-12-31", scaling="none").apply(ostia.temperature, ostia.dates)
        weights = np.cos(np.deg2rad(ostia.latitude))[:, None] * (~ostia.mask)
        index = (np.nan_to_num(anomalies) * weights).sum(axis=(1, 2)) / weights.sum()
        smoothed = np.convolve(index, np.ones(3) / 3, mode="same")
        print("\nNino 3.4 index from OSTIA (3-month mean, C): "
              + ", ".join(f"{str(d)[:7]} {v:+.1f}" for d, v in zip(ostia.dates[1:-1:3], smoothed[1:-1:3])))
        axes[2].plot(ostia.dates.astype("datetime64[D]"), smoothed)
        axes[2].axhline(0.5, color="r", lw=0.5)
        axes[2].axhline(-0.5, color="b", lw=0.5)
        axes[2].set_title("Nino 3.4 anomaly, OSTIA monthly (C)")
    figure.tight_layout()
    figure.savefig(output / "sea_surface_temperature.png", dpi=90)
    print(f"\nwrote {output / 'sea_surface_temperature.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("sst-example"))
    parser.add_argument("--synthetic-years", type=int, default=2)
    arguments = parser.parse_args()
    main(arguments.output, arguments.synthetic_years)
