//! CA recognition. (In progress.)
use crate::error::TxError;
use crate::exec::{Ctx, TxOutput};
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaAction {}
pub(crate) fn execute(_ctx: &mut Ctx<'_>, a: &CaAction) -> Result<TxOutput, TxError> {
    match *a {}
}
