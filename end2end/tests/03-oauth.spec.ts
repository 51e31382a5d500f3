import { APIRequestContext, expect, test } from '@playwright/test';
import { hydrated, signIn } from './helpers';

/** RFC 6749 §4.4 token request, client authentication in the body (as Entra sends it). */
async function fetchToken(request: APIRequestContext, endpoint: string, clientId: string, secret: string) {
  return request.post(endpoint, {
    form: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret },
  });
}

test('OAuth 2.0 client credentials: generate a secret, fetch a token, provision a user, rotate, revoke', async ({
  page,
  request,
}) => {
  await signIn(page);
  await expect(page).toHaveURL(/\/$/);
  await page.goto('/setup-admin/integration/microsoft-entra');
  await expect(page.getByRole('heading', { name: 'OAuth 2.0 client credentials' })).toBeVisible();
  await hydrated(page);

  // The previous journey left provisioning disabled.
  await page.getByRole('button', { name: 'Enabled' }).click();
  await expect(page.getByTestId('provisioning-state')).toContainText('Enabled');

  const endpoint = await page.getByTestId('endpoint-url').inputValue();
  const tokenEndpoint = await page.getByTestId('token-endpoint').inputValue();
  expect(tokenEndpoint).toBe(`${endpoint}/oauth/token`);
  const clientId = await page.getByTestId('client-id').inputValue();
  expect(clientId).toMatch(/^[0-9a-f-]{36}$/);

  // Generate, with the default expiry of two years.
  await expect(page.getByLabel('Expires after')).toHaveValue('2');
  await page.getByRole('button', { name: 'Generate client secret' }).click();
  await expect(page.getByText('Copy this client secret now.')).toBeVisible();
  const first = await page.getByTestId('new-secret').inputValue();
  expect(first).toMatch(/^bbz_cs_[0-9a-f]{64}$/);
  const rows = page.getByTestId('secret-row');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText(first.slice(-4));
  await expect(rows.first()).toContainText('Active');

  // A token over HTTP, exactly as RFC 6749 answers it.
  let res = await fetchToken(request, tokenEndpoint, clientId, first);
  expect(res.status()).toBe(200);
  expect(res.headers()['cache-control']).toBe('no-store');
  const grant = await res.json();
  expect(grant.token_type).toBe('Bearer');
  expect(grant.expires_in).toBe(3600);
  const firstToken: string = grant.access_token;
  expect(firstToken).toMatch(/^bbz_at_[0-9a-f]{64}$/);

  // Provision a user with it.
  const scim = (token: string) => ({
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/scim+json',
  });
  res = await request.post(`${endpoint}/Users`, {
    headers: scim(firstToken),
    data: {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'oauth.grace@contoso.example',
      externalId: 'e2e-oauth-grace',
      name: { givenName: 'Grace', familyName: 'Hopper' },
      emails: [{ value: 'oauth.grace@contoso.example', type: 'work', primary: true }],
      active: true,
    },
  });
  expect(res.status()).toBe(201);
  const user = await res.json();
  res = await request.get(`${endpoint}/Users/${user.id}`, { headers: scim(firstToken) });
  expect(res.status()).toBe(200);
  expect((await res.json()).userName).toBe('oauth.grace@contoso.example');

  // Rotate: a new secret, the old one retiring and still working for the overlap.
  await page.getByRole('button', { name: 'Rotate client secret' }).click();
  await expect(page.getByTestId('new-secret')).not.toHaveValue(first);
  const second = await page.getByTestId('new-secret').inputValue();
  expect(second).toMatch(/^bbz_cs_[0-9a-f]{64}$/);
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1)).toContainText('Retiring until');
  await expect(rows.nth(1)).toContainText(first.slice(-4));
  expect((await fetchToken(request, tokenEndpoint, clientId, first)).status()).toBe(200);
  // HTTP Basic works too.
  res = await request.post(tokenEndpoint, {
    headers: { Authorization: `Basic ${Buffer.from(`${clientId}:${second}`).toString('base64')}` },
    form: { grant_type: 'client_credentials' },
  });
  expect(res.status()).toBe(200);
  const secondToken: string = (await res.json()).access_token;

  // Revoke the old secret, confirmed: it and its access tokens stop at once.
  await rows.nth(1).getByRole('button', { name: 'Revoke' }).click();
  await rows.nth(1).getByRole('button', { name: 'Yes, revoke' }).click();
  await expect(rows.nth(1)).toContainText('Revoked');
  res = await fetchToken(request, tokenEndpoint, clientId, first);
  expect(res.status()).toBe(401);
  expect(res.headers()['www-authenticate']).toMatch(/^Basic/);
  expect((await res.json()).error).toBe('invalid_client');
  res = await request.get(`${endpoint}/Users/${user.id}`, { headers: scim(firstToken) });
  expect(res.status()).toBe(401);
  res = await request.get(`${endpoint}/Users/${user.id}`, { headers: scim(secondToken) });
  expect(res.status()).toBe(200);

  // The secret is never shown again; the changes are in the audit trail.
  await page.reload();
  await expect(page.getByTestId('new-secret')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(second.slice(7, 30));
  const recent = page.getByRole('table', { name: 'Recent changes' });
  await expect(recent).toContainText('Client secret revoked');
  await expect(recent).toContainText('Client secret rotated');
  await expect(recent).toContainText('Client secret generated');

  // The access-token lifetime is the organisation's choice.
  await hydrated(page);
  const lifetimes = page.getByRole('region', { name: 'Credential lifetimes' });
  await lifetimes.getByLabel('Access-token lifetime (OAuth 2.0)').selectOption('120');
  await lifetimes.getByRole('button', { name: 'Save' }).first().click();
  await expect(recent).toContainText('Access-token lifetime changed');
  res = await fetchToken(request, tokenEndpoint, clientId, second);
  expect((await res.json()).expires_in).toBe(7200);
});
