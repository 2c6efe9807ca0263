// A valid linear model whose header sets the "encrypted" flag (with the
// header CRC recomputed, so the flag is the only rule broken).
#[apr_lambda::apr_lambda(model = "models/unsupported_flags.apr")]
fn main() {}
