"""Regenerates the bundled sample tables (synthetic, seeded; nothing is downloaded).

Run: python resources/samples/make_samples.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def flowers(rng: np.random.Generator, n_per_class: int = 200) -> pd.DataFrame:
    """Three species told apart by four measurements and a colour: a multiclass table."""
    species = {
        "setosa": ([5.0, 3.4, 1.5, 0.25], ["white", "violet"]),
        "versicolor": ([5.9, 2.8, 4.3, 1.3], ["violet", "blue"]),
        "virginica": ([6.6, 3.0, 5.5, 2.0], ["blue", "violet", "white"]),
    }
    frames = []
    for name, (mean, colours) in species.items():
        x = rng.normal(mean, [0.4, 0.35, 0.45, 0.25], size=(n_per_class, 4))
        frames.append(pd.DataFrame({
            "sepal_length": x[:, 0].round(2), "sepal_width": x[:, 1].round(2),
            "petal_length": np.abs(x[:, 2]).round(2), "petal_width": np.abs(x[:, 3]).round(2),
            "colour": rng.choice(colours, size=n_per_class),
            "species": name,
        }))
    df = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=0).reset_index(drop=True)
    df.loc[rng.choice(len(df), 6, replace=False), "sepal_width"] = np.nan
    return df


def houses(rng: np.random.Generator, n: int = 800) -> pd.DataFrame:
    """House prices from size, rooms, age and district: a regression table."""
    area = rng.uniform(35, 220, n)
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.8, n)), 1, 8)
    age = rng.uniform(0, 90, n)
    district = rng.choice(["centre", "suburb", "riverside", "industrial"], n, p=[0.25, 0.4, 0.2, 0.15])
    uplift = pd.Series(district).map({"centre": 1.35, "suburb": 1.0, "riverside": 1.2, "industrial": 0.8}).to_numpy()
    garden = rng.random(n) < 0.4
    price = (1800 * area + 9000 * rooms - 450 * age + 15000 * garden) * uplift + rng.normal(0, 12000, n)
    return pd.DataFrame({
        "area_m2": area.round(1), "rooms": rooms.astype(int), "age_years": age.round(0).astype(int),
        "district": district, "garden": garden, "price": (price / 1000).round(2),
    })


def churn(rng: np.random.Generator, n: int = 1000) -> pd.DataFrame:
    """Whether a customer leaves: a binary table with yes/no labels."""
    tenure = rng.integers(1, 72, n)
    monthly = rng.uniform(15, 120, n).round(2)
    calls = rng.poisson(1.5, n)
    plan = rng.choice(["monthly", "yearly", "two-year"], n, p=[0.55, 0.3, 0.15])
    logit = -1.0 - 0.05 * tenure + 0.025 * monthly + 0.45 * calls + pd.Series(plan).map(
        {"monthly": 1.0, "yearly": -0.6, "two-year": -1.5}).to_numpy()
    left = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({
        "tenure_months": tenure, "monthly_charge": monthly, "support_calls": calls, "plan": plan,
        "churned": np.where(left, "yes", "no"),
    })


if __name__ == "__main__":
    rng = np.random.default_rng(2026)
    flowers(rng).to_csv(HERE / "flowers.csv", index=False)
    houses(rng).to_csv(HERE / "houses.csv", index=False)
    churn(rng).to_csv(HERE / "churn.csv", index=False)
