//! The node runtime: storage, network, mempool, API. Not built yet (see the node issue).
