// The default form: a sync `main` whose body runs once before serving. With
// no events on the command line and an empty stdin, local mode answers
// nothing and exits 0.
#[apr_lambda::apr_lambda(model = "models/linear_regression.v2.apr", features = 3, max_batch = 100)]
fn main() {
    println!("init ran");
}
