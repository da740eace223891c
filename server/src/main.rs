//! `chat-server`: see `chat_server::cli` for the commands.

fn main() -> std::process::ExitCode {
    chat_server::cli::main()
}
