/**
 * What provisioning takes from apt's simulated install: the packages it would newly install, never upgrades of
 * packages the machine already has (an unpacked newer libc beside the system's loader would break every program).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { libraryEnv, newInstalls } from '../../scripts/lib/debian.ts';

test('newInstalls: the Inst lines of new packages, in order; upgrades, Conf lines and notes are left out', () => {
  const simulation = [
    'NOTE: This is only a simulation!',
    'The following NEW packages will be installed:',
    '  chromium chromium-common libgtk-3-0',
    'Inst libgtk-3-0 (3.24.38-2~deb12u3 Debian:12.11/stable [amd64])',
    'Inst postgresql-15 [15.18-0+deb12u1] (15.20-0+deb12u1 Debian-Security:12/stable-security [amd64])',
    'Inst chromium-common (156.0.8078.79-1~deb12u1 Debian-Security:12/stable-security [amd64])',
    'Inst chromium (156.0.8078.79-1~deb12u1 Debian-Security:12/stable-security [amd64])',
    'Conf libgtk-3-0 (3.24.38-2~deb12u3 Debian:12.11/stable [amd64])',
  ].join('\n');
  assert.deepEqual(newInstalls(simulation), ['libgtk-3-0', 'chromium-common', 'chromium']);
});

test('libraryEnv: unpacked library folders go first on LD_LIBRARY_PATH, before what was there', () => {
  assert.equal(libraryEnv(['/c/a', '/c/b'], { LD_LIBRARY_PATH: '/opt/x' })['LD_LIBRARY_PATH'], '/c/a:/c/b:/opt/x');
  assert.equal(libraryEnv(['/c/a'], {})['LD_LIBRARY_PATH'], '/c/a');
  assert.equal(libraryEnv([], { PATH: '/bin' })['LD_LIBRARY_PATH'], undefined);
});
