//! `wharf-example-conformance`: the conformance suite's fixtures behind the
//! `wharf` command line (`serve`, `stdio`, `check`, every setting and
//! transport), as any program built on Wharf's library is.

mod fixtures;

fn main() -> std::process::ExitCode {
    match fixtures::app() {
        Ok(app) => wharf::run_app(app),
        Err(e) => {
            eprintln!("error: the fixtures are not a valid app: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
