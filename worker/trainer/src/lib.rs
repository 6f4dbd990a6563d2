//! Cascade-Correlation candidate-unit trainer.
