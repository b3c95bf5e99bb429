//! Tendermint BFT consensus as a pure state machine (no IO). Work in progress.
