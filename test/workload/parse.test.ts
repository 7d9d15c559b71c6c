// The workload parsers over bytes captured on this machine (cgroup files, Podman's store) and hand-made runtime files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseProcCgroup, parseCgroupPath } from '../../src/workload/cgroup.js';
import { parseBundleNames } from '../../src/workload/annotations.js';
import { parseStorageContainers, parseDockerName } from '../../src/workload/stores.js';
import { parseNetnsLink, parseStartTime } from '../../src/workload/proc.js';
import { fixturePath } from '../helpers/paths.js';

const fixture = (name: string): string => readFileSync(fixturePath('workload', name), 'utf8');
const HANDMADE = 'c63cdae9055b2f7249700c6fe8cfde62275522da6b34d43ce07afed40ff51112';
const POD_UID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const PODMAN = fixture('podman.id').trim();

test('cgroup: a Podman container on the v1 hybrid layout (/libpod_parent/libpod-ID, captured)', () => {
  assert.deepEqual(parseProcCgroup(fixture('podman-v1.cgroup')), {
    container: PODMAN,
    runtime: 'podman',
    podUid: null,
  });
});

test('cgroup: kubepods, systemd driver, containerd (v1 pids line, captured)', () => {
  assert.deepEqual(parseProcCgroup(fixture('k8s-systemd-containerd.cgroup')), {
    container: HANDMADE,
    runtime: 'containerd',
    podUid: POD_UID,
  });
});

test('cgroup: kubepods, systemd driver, CRI-O, burstable (captured)', () => {
  assert.deepEqual(parseProcCgroup(fixture('k8s-systemd-crio.cgroup')), {
    container: HANDMADE,
    runtime: 'cri-o',
    podUid: POD_UID,
  });
});

test('cgroup: kubepods, cgroupfs driver /kubepods/<qos>/pod<uid>/<id>: ID and pod, runtime unknown (captured)', () => {
  assert.deepEqual(parseProcCgroup(fixture('k8s-cgroupfs.cgroup')), {
    container: HANDMADE,
    runtime: null,
    podUid: POD_UID,
  });
});

test('cgroup: guaranteed pod on the v2 line (kubepods-pod<uid>.slice, captured)', () => {
  assert.deepEqual(parseProcCgroup(fixture('k8s-guaranteed-v2.cgroup')), {
    container: HANDMADE,
    runtime: 'containerd',
    podUid: POD_UID,
  });
});

test('cgroup: Docker, systemd driver on the v2 line and cgroupfs /docker/ID on a v1 line (captured)', () => {
  const docker = { container: HANDMADE, runtime: 'docker', podUid: null };
  assert.deepEqual(parseProcCgroup(fixture('docker-v2.cgroup')), docker);
  assert.deepEqual(parseProcCgroup(fixture('docker-cgroupfs.cgroup')), docker);
});

test('cgroup: a process in no container, and the sandbox this runs in (a 32-hex name is no container ID)', () => {
  const none = { container: null, runtime: null, podUid: null };
  assert.deepEqual(parseProcCgroup(fixture('host-v1.cgroup')), none);
  assert.deepEqual(parseProcCgroup('4:memory:/process_api/cde7cec2604c4499a9b317854cfbde6a\n0::/\n'), none);
  assert.deepEqual(parseProcCgroup(''), none);
});

test('cgroup paths: conmon scopes, init sub-cgroups, pod without container, look-alikes', () => {
  const id = 'a'.repeat(64);
  assert.equal(parseCgroupPath(`/machine.slice/libpod-conmon-${id}.scope`).container, null);
  assert.equal(parseCgroupPath(`/system.slice/crio-conmon-${id}.scope`).container, null);
  assert.deepEqual(parseCgroupPath(`/machine.slice/libpod-${id}.scope/container`), {
    container: id,
    runtime: 'podman',
    podUid: null,
  });
  assert.deepEqual(parseCgroupPath(`/kubepods/burstable/pod${POD_UID}`), {
    container: null,
    runtime: null,
    podUid: POD_UID,
  });
  assert.deepEqual(parseCgroupPath(`/kubepods/pod${POD_UID}/crio-${id}`), {
    container: id,
    runtime: 'cri-o',
    podUid: POD_UID,
  });
  assert.equal(parseCgroupPath(`/user.slice/${id}`).container, null, 'a bare ID outside kubepods or docker');
  assert.equal(parseCgroupPath(`/system.slice/docker-${id}x.scope`).container, null);
  assert.equal(parseCgroupPath(`/pod${POD_UID}/x`).podUid, null, 'pod<uid> outside kubepods');
  assert.equal(parseCgroupPath(`/system.slice/docker-${id.toUpperCase()}.scope`).container, null);
});

test('cgroup: the line with a container wins over lines that only have a pod or nothing', () => {
  const id = 'b'.repeat(64);
  const text = `9:name=systemd:/\n8:pids:/kubepods/pod${POD_UID}\n4:memory:/kubepods/pod${POD_UID}/${id}\n0::/\n`;
  assert.deepEqual(parseProcCgroup(text), { container: id, runtime: null, podUid: POD_UID });
});

test('bundle annotations: containerd CRI (io.kubernetes.cri.*), container and sandbox', () => {
  assert.deepEqual(parseBundleNames(fixture('cri-containerd-config.json')), {
    pod: 'shop/cart-7d9f',
    podUid: POD_UID,
    containerName: 'cart',
    sandbox: false,
  });
  assert.deepEqual(parseBundleNames(fixture('cri-containerd-sandbox-config.json')), {
    pod: 'shop/cart-7d9f',
    podUid: POD_UID,
    containerName: null,
    sandbox: true,
  });
});

test('bundle annotations: CRI-O (io.kubernetes.pod.*, io.kubernetes.container.name), container and sandbox', () => {
  const pod = { pod: 'data/cache-0', podUid: '5e6f7a8b-1c2d-4e3f-9a8b-7c6d5e4f3a2b' };
  assert.deepEqual(parseBundleNames(fixture('crio-config.json')), { ...pod, containerName: 'redis', sandbox: false });
  assert.deepEqual(parseBundleNames(fixture('crio-sandbox-config.json')), {
    ...pod,
    containerName: null,
    sandbox: true,
  });
});

test('bundle annotations: Podman (captured) has none of them; bad JSON and odd shapes give nulls', () => {
  const none = { pod: null, podUid: null, containerName: null, sandbox: false };
  assert.deepEqual(parseBundleNames(fixture('podman-config.json')), none);
  for (const bad of ['', '{', 'null', '[]', '{"annotations":7}', '{"annotations":{"io.kubernetes.pod.name":5}}'])
    assert.deepEqual(parseBundleNames(bad), none, bad);
  assert.deepEqual(
    parseBundleNames('{"annotations":{"io.kubernetes.pod.name":"only-name"}}'),
    none,
    'a pod is namespace/name: half of it is not shown',
  );
});

test("Podman's store (captured containers.json): ID to name; bad input gives an empty map", () => {
  assert.deepEqual([...parseStorageContainers(fixture('podman-containers.json'))], [[PODMAN, 'dwtest-try']]);
  for (const bad of ['', 'x', '{}', '[{"id":1}]', '[null]']) assert.equal(parseStorageContainers(bad).size, 0, bad);
});

test("Docker's config.v2.json: the Name without its slash", () => {
  assert.equal(parseDockerName(fixture('docker-config.v2.json')), 'web-1');
  assert.equal(parseDockerName('{"Name":""}'), null);
  assert.equal(parseDockerName('{'), null);
});

test('/proc: a net namespace link and a start time (past a comm holding spaces and parentheses)', () => {
  assert.equal(parseNetnsLink('net:[4026531840]'), 4026531840);
  assert.equal(parseNetnsLink('mnt:[4026531840]'), null);
  assert.equal(parseNetnsLink('net:[]'), null);
  const stat = '4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100';
  assert.equal(parseStartTime(stat), '987654');
  assert.equal(parseStartTime('4242 (x) S 1'), null);
});
