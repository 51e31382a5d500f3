import { APIRequestContext, expect, Page, test } from '@playwright/test';
import { hydrated, signIn } from './helpers';

const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

function user(userName: string, given: string, family?: string, extra: object = {}) {
  const name: Record<string, string> = { givenName: given };
  if (family) name.familyName = family;
  return {
    schemas: [SCIM_USER, ENTERPRISE],
    userName,
    active: true,
    displayName: family ? `${given} ${family}` : given,
    name,
    emails: [{ type: 'work', primary: true, value: userName }],
    ...extra,
  };
}

/** No horizontal scrolling at this width, and a screenshot for the record. */
async function fitsAt(page: Page, width: number, name: string) {
  await page.setViewportSize({ width, height: 900 });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, `${name} at ${width}px overflows by ${overflow}px`).toBeLessThanOrEqual(0);
  await page.screenshot({ path: `test-results/console-${name}-${width}.png`, fullPage: true });
}

async function checkWidths(page: Page, name: string) {
  await fitsAt(page, 1280, name);
  await fitsAt(page, 360, name);
  await page.setViewportSize({ width: 1280, height: 900 });
}

test('Users, Groups, Provisioning log and health show what Entra provisioned', async ({ page, request }) => {
  await signIn(page);
  await expect(page).toHaveURL(/\/$/);

  // Provisioning on, a fresh token (the earlier journey leaves it off).
  await page.goto('/setup-admin/integration/microsoft-entra');
  await hydrated(page);
  await page.getByRole('button', { name: 'Enabled' }).click();
  await expect(page.getByTestId('provisioning-state')).toContainText('Enabled');
  await page.getByRole('button', { name: /(Rotate|Generate) token/ }).click();
  await expect(page.getByTestId('new-token')).toHaveValue(/^bbz_scim_/);
  const token = await page.getByTestId('new-token').inputValue();
  const endpoint = await page.getByTestId('endpoint-url').inputValue();

  const scim = (api: APIRequestContext, method: string, path: string, data?: object) =>
    api.fetch(endpoint + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' },
      data: data ? JSON.stringify(data) : undefined,
    });

  // Entra provisions a manager, a user with enterprise attributes, and one who leaves later.
  let res = await scim(request, 'POST', '/Users', user('grace@contoso.example', 'Grace', 'Hopper'));
  expect(res.status()).toBe(201);
  const grace = (await res.json()).id;
  res = await scim(
    request,
    'POST',
    '/Users',
    user('alice@contoso.example', 'Alice', 'Liddell', {
      title: 'Engineer',
      phoneNumbers: [{ type: 'mobile', value: '+44 7700 900123' }],
      [ENTERPRISE]: { department: 'Research', employeeNumber: 'E-1001', manager: { value: grace } },
    }),
  );
  expect(res.status()).toBe(201);
  const alice = (await res.json()).id;
  res = await scim(request, 'POST', '/Users', user('bob@contoso.example', 'Bob', 'Builder'));
  const bob = (await res.json()).id;
  res = await scim(request, 'POST', '/Groups', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
    displayName: 'Sales',
    members: [{ value: alice }, { value: bob }],
  });
  expect(res.status()).toBe(201);
  const sales = (await res.json()).id;
  res = await scim(request, 'PATCH', `/Users/${alice}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Replace', path: 'title', value: 'Senior Engineer' }],
  });
  expect(res.status()).toBe(200);
  // A user without a last name fails, with a SCIM error that says so.
  res = await scim(request, 'POST', '/Users', user('nolast@contoso.example', 'Nolast'));
  expect(res.status()).toBe(400);
  // Bob is deprovisioned.
  res = await scim(request, 'DELETE', `/Users/${bob}`);
  expect(res.status()).toBe(204);

  // Users: everyone, with status and source.
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await expect(page).toHaveURL(/\/users$/);
  const rows = page.getByTestId('user-row');
  await expect(rows.filter({ hasText: 'alice@contoso.example' })).toContainText('Active');
  await expect(rows.filter({ hasText: 'alice@contoso.example' })).toContainText('Microsoft Entra ID');
  await expect(rows.filter({ hasText: 'bob@contoso.example' })).toContainText('Deprovisioned');
  await expect(rows.filter({ hasText: 'ada@contoso.example' })).toContainText('Local');
  await checkWidths(page, 'users');

  // Search and filter are plain GET forms.
  await page.getByLabel('Search').fill('lidd');
  await page.getByLabel('Match').selectOption('contains');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/q=lidd/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Alice Liddell');
  await page.goto('/users?status=deprovisioned');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('bob@contoso.example');

  // Alice's page: attributes, manager as a link, groups, provisioning history.
  await page.goto(`/users/${alice}`);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Alice Liddell');
  await expect(page.getByTestId('user-status')).toHaveText('Active');
  await expect(page.locator('main')).toContainText('Senior Engineer');
  await expect(page.locator('main')).toContainText('Research');
  await expect(page.locator('main')).toContainText('E-1001');
  await expect(page.locator('main')).toContainText('+44 7700 900123');
  await expect(page.getByRole('link', { name: 'Grace Hopper' })).toHaveAttribute('href', `/users/${grace}`);
  await expect(page.getByTestId('user-groups')).toContainText('Sales');
  const history = page.getByTestId('history');
  await expect(history).toContainText('Created');
  await expect(history).toContainText('Updated');
  await expect(history.getByRole('table').first()).toContainText('Engineer');
  await expect(history.getByRole('table').first()).toContainText('Senior Engineer');
  await checkWidths(page, 'user');

  await page.goto(`/users/${bob}`);
  await expect(page.getByTestId('user-status')).toHaveText('Deprovisioned');
  await expect(page.getByTestId('history')).toContainText('Deprovisioned');

  // Groups: Sales keeps Alice (Bob left it when deprovisioned).
  await page.getByRole('link', { name: 'Groups', exact: true }).click();
  const group = page.getByTestId('group-row').filter({ hasText: 'Sales' });
  await expect(group).toContainText('1');
  await group.getByRole('link', { name: 'Sales' }).click();
  await expect(page).toHaveURL(new RegExp(`/groups/${sales}$`));
  await expect(page.getByRole('table', { name: 'Members' })).toContainText('alice@contoso.example');
  await expect(page.getByRole('table', { name: 'Members' })).not.toContainText('bob@contoso.example');
  await checkWidths(page, 'group');

  // Health at the top of the Microsoft Entra provisioning page: counts and the last error.
  await page.goto('/setup-admin/integration/microsoft-entra');
  const health = page.getByTestId('health');
  await expect(health).toContainText('On');
  await expect(page.getByTestId('last-request')).toContainText('just now');
  const requests = Number(await page.getByTestId('requests-24h').innerText());
  expect(requests).toBeGreaterThanOrEqual(7);
  expect(Number(await page.getByTestId('failures-24h').innerText())).toBeGreaterThanOrEqual(1);
  await expect(page.getByTestId('last-error')).toContainText('name.familyName');
  await expect(health.locator('svg')).toHaveCount(2);
  await checkWidths(page, 'entra');

  // The provisioning log: the failing request with its error detail, opened in full.
  await page.getByTestId('open-log').click();
  await expect(page).toHaveURL(/\/microsoft-entra\/log$/);
  await page.getByLabel('Outcome').selectOption('failure');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/outcome=failure/);
  const failure = page.getByTestId('log-row').filter({ hasText: 'nolast@contoso.example' });
  await expect(failure).toContainText('Could not create user nolast@contoso.example');
  await expect(failure).toContainText('name.familyName');
  await expect(failure).toContainText('400');
  await checkWidths(page, 'log');
  await failure.getByRole('link').first().click();
  await expect(page.getByTestId('entry-outcome')).toHaveText('Failure');
  await expect(page.getByTestId('entry-error')).toContainText('name.familyName');
  await expect(page.locator('pre.body').first()).toContainText('"userName": "nolast@contoso.example"');
  await expect(page.locator('pre.body').nth(1)).toContainText('invalidValue');
  await expect(page.locator('main')).not.toContainText(token);
  await checkWidths(page, 'entry');

  // Home: one line on provisioning.
  await page.goto('/');
  await expect(page.getByTestId('provisioning-summary')).toContainText('Provisioning enabled');
  await expect(page.getByTestId('provisioning-summary')).toContainText('last request');
});
