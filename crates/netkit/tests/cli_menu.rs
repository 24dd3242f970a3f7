//! `netkit` with no arguments: on a terminal (tmux) a menu that runs a
//! client against a real server, a server until Ctrl-C, and comes back
//! each time until the user quits; without a terminal, the help.

#[path = "cli/support.rs"]
mod support;
#[path = "cli/terminal.rs"]
mod terminal;

use support::*;
use terminal::Terminal;

#[test]
fn the_menu_runs_a_client_and_a_server_until_quit() {
    if !testkit::require("tmux") {
        return;
    }
    let mut command = netkit();
    command.args(["upper", "serve", "--bind", "127.0.0.1:0"]);
    let upper = testkit::Server::start(command, 2);
    let addr = upper.addr().to_string();

    let terminal = Terminal::start("menu", &[]);
    // System: upper is first; verb: send is first.
    terminal.wait_for("? System ›", 1);
    terminal.wait_for("quit", 1);
    terminal.keys(&["Enter"]);
    terminal.wait_for("? netkit upper ›", 1);
    terminal.keys(&["Enter"]);
    terminal.wait_for("Server (HOST:PORT)", 1);
    terminal.type_line(&addr);
    terminal.wait_for("Text to send", 1);
    terminal.type_line("hello from the menu");
    let screen = terminal.wait_for("back to the menu", 1);
    assert!(screen.contains("HELLO FROM THE MENU"), "{screen}");
    assert!(
        screen.contains(&format!("$ netkit upper send {addr} 'hello from the menu'")),
        "{screen}"
    );

    // Again, the second verb: a server on its own port, until Ctrl-C.
    terminal.wait_for("? System ›", 1);
    terminal.keys(&["Enter"]);
    terminal.wait_for("? netkit upper ›", 1);
    terminal.keys(&["Down", "Enter"]);
    terminal.wait_for("Address (TCP and UDP)", 1);
    terminal.type_line("127.0.0.1:0");
    let screen = terminal.wait_for("(udp)", 1);
    let served = screen
        .lines()
        .find_map(testkit::listening_addr)
        .expect("the server's address");
    let reply = run_ok(&["upper", "send", &served.to_string(), "through the menu"]);
    assert_eq!(text(&reply.stdout), "THROUGH THE MENU\n");
    terminal.keys(&["C-c"]);
    terminal.wait_for("back to the menu", 2);

    // Quit is the last item.
    terminal.wait_for("? System ›", 1);
    terminal.keys(&["Up", "Enter"]);
    terminal.wait_for("netkit exited 0", 1);
}

#[test]
fn without_a_terminal_no_arguments_prints_the_help() {
    let out = netkit().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = text(&out.stderr) + &text(&out.stdout);
    assert!(help.contains("Usage: netkit <COMMAND>"), "{help}");
    assert!(help.contains("completions"), "{help}");
}
