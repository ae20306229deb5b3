#!/bin/sh
# subreaper.sh COMMAND [ARGS...]
#
# Runs COMMAND as the only child of a process that is a child subreaper (PR_SET_CHILD_SUBREAPER)
# and reaps every orphan the moment it exits, forwarding TERM, INT and HUP to COMMAND. It exits
# with COMMAND's status once no descendant is left.
#
# Why: libvirtd daemonizes QEMU, so QEMU is re-parented to the nearest subreaper or to PID 1.
# When a domain stops, libvirt polls kill(pid, 0) until QEMU is gone, and a zombie still counts as
# alive. Under a PID 1 that reaps only every second or so (containers, micro-VM init processes),
# that adds seconds to every destroy and to the source's side of every migration.
#
# A shell cannot call prctl(2), so the few lines that must are handed to perl (perl-base is
# essential on Debian). The syscall number comes from syscall.ph when installed.
[ $# -gt 0 ] || { echo "usage: subreaper.sh COMMAND [ARGS...]" >&2; exit 2; }
exec perl -e '
  use strict;
  my $nr = eval { require "syscall.ph"; &SYS_prctl() };
  unless (defined $nr) {
    require POSIX;
    my $machine = (POSIX::uname())[4];
    my %prctl = (x86_64 => 157, aarch64 => 167, ppc64le => 171, s390x => 172, riscv64 => 167);
    $nr = $prctl{$machine} or die "subreaper: no prctl syscall number known for $machine\n";
  }
  syscall($nr, 36, 1, 0, 0, 0) == 0 or die "subreaper: prctl(PR_SET_CHILD_SUBREAPER): $!\n";
  my $child = fork() // die "subreaper: fork: $!\n";
  if ($child == 0) { exec { $ARGV[0] } @ARGV or die "subreaper: cannot run $ARGV[0]: $!\n" }
  for my $sig (qw(TERM INT HUP)) { $SIG{$sig} = sub { kill $sig, $child } }
  my $status = 0;
  while ((my $pid = wait()) != -1) { $status = $? if $pid == $child }
  exit($status & 127 ? 128 + ($status & 127) : $status >> 8);
' "$@"
