#[apr_lambda::apr_lambda(model = "models/bad_header_crc.apr")]
fn main() {}
