import { expect, test } from '@playwright/test';
import { hydrated, signIn } from './helpers';

const testConnection = '/Users?filter=userName+eq+%22a3c4f1a2-9b1e-4c55-8f63-0e7d1c2b9a10%22';

test('SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning: enable, generate, rotate, revoke', async ({
  page,
  request,
}) => {
  await signIn(page);
  await expect(page).toHaveURL(/\/$/);

  await page.getByRole('link', { name: 'SETUP ADMIN' }).click();
  await page.getByRole('link', { name: /^INTEGRATION/ }).click();
  await page.getByRole('link', { name: /Microsoft Entra provisioning/ }).click();
  await expect(page).toHaveURL(/\/setup-admin\/integration\/microsoft-entra$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Microsoft Entra provisioning');
  await hydrated(page);

  await page.getByRole('button', { name: 'Enabled' }).click();
  await expect(page.getByTestId('provisioning-state')).toContainText('Enabled');
  await expect(page.getByRole('button', { name: 'Enabled' })).toHaveAttribute('aria-pressed', 'true');

  const endpoint = await page.getByTestId('endpoint-url').inputValue();
  expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/scim\/v2\/contoso-pharma$/);

  await page.getByRole('button', { name: 'Generate token' }).click();
  await expect(page.getByText('It will not be shown again.')).toBeVisible();
  const first = await page.getByTestId('new-token').inputValue();
  expect(first).toMatch(/^bbz_scim_[0-9a-f]{64}$/);

  const scim = (token: string) =>
    request.get(endpoint + testConnection, { headers: { Authorization: `Bearer ${token}` } });
  let res = await scim(first);
  expect(res.status()).toBe(200);
  expect((await res.json()).totalResults).toBe(0);

  // Rotate: the new token is shown, the old one is listed as retiring and still works.
  await page.getByRole('button', { name: 'Rotate token' }).click();
  await expect(page.getByTestId('new-token')).not.toHaveValue(first);
  const second = await page.getByTestId('new-token').inputValue();
  expect(second).toMatch(/^bbz_scim_[0-9a-f]{64}$/);
  const rows = page.getByTestId('token-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1)).toContainText('Retiring until');
  await expect(rows.nth(1)).toContainText(first.slice(-4));
  expect((await scim(first)).status()).toBe(200);

  // Revoke the old one, with confirmation; it stops at once, the new one keeps working.
  await rows.nth(1).getByRole('button', { name: 'Revoke' }).click();
  await rows.nth(1).getByRole('button', { name: 'Yes, revoke' }).click();
  await expect(rows.nth(1)).toContainText('Revoked');
  res = await scim(first);
  expect(res.status()).toBe(401);
  expect((await res.json()).schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
  expect((await scim(second)).status()).toBe(200);

  // The secret is gone after a reload; recent changes tell the story.
  await page.reload();
  await expect(page.getByTestId('new-token')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(second.slice(9, 30));
  const recent = page.getByRole('table', { name: 'Recent changes' });
  await expect(recent).toContainText('Bearer token revoked');
  await expect(recent).toContainText('Bearer token rotated');
  await expect(recent).toContainText('Automatic user provisioning enabled');

  // Disabled: Entra's Test Connection fails with a clear 403.
  await hydrated(page);
  await page.getByRole('button', { name: 'Disabled' }).click();
  await expect(page.getByTestId('provisioning-state')).toContainText('Disabled');
  res = await scim(second);
  expect(res.status()).toBe(403);
  expect((await res.json()).detail).toContain('disabled for this organisation');
});
