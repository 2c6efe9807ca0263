// many_outputs.apr has 2000 outputs: the answers to 10 000 rows can exceed
// Lambda's 6 291 556-byte response limit.
#[apr_lambda::apr_lambda(model = "models/many_outputs.apr", max_batch = 10000)]
fn main() {}
