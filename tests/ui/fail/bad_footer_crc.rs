#[apr_lambda::apr_lambda(model = "models/bad_footer_crc.apr")]
fn main() {}
