"""Offline music analysis for the AI DJ: tempo, beats, downbeats, key, energy, loudness.

``analyze(x, sr) -> Analysis`` (dsp.analysis.analyze) runs everything; the modules
hold one step each: resample, spectrum, onset, tempo, beats, key, energy.
"""

from dsp.analysis.analyze import Analysis, analyze

__all__ = ["Analysis", "analyze"]
