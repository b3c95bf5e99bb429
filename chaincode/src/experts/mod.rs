//! Experts. (In progress.)
use crate::error::TxError;
use crate::exec::{Ctx, TxOutput};
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpertAction {}
pub(crate) fn execute(_ctx: &mut Ctx<'_>, a: &ExpertAction) -> Result<TxOutput, TxError> {
    match *a {}
}
pub(crate) fn begin_block(
    _s: &dyn crate::state::StateReader,
    _b: &crate::exec::BlockContext,
) -> crate::state::WriteSet {
    Default::default()
}
